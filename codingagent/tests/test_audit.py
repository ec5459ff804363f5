"""Security events recorded by the other apps into the accounts audit log: exports, deletions and sandbox
refusals (accounts <- projects <- analysis <- exports: they call accounts.services.audit_record)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from analysis.models import Run, Step
from analysis.services import step_create
from analysis.tests.factories import AnalysisSessionFactory, RunFactory
from projects.tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


def _events(kind: str) -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(event=kind).order_by("pk").values_list("actor_email", "target"))


def test_an_export_is_audited_with_its_format(client, alice, project):
    session = AnalysisSessionFactory(project=project, title="Q1")
    client.force_login(alice)

    response = client.get(reverse("exports:session-export", args=[session.pk]), {"format": "json"})

    assert response.status_code == 200
    event = AuditEvent.objects.get(event=AuditEvent.Event.EXPORT)
    assert (event.actor, event.target, event.detail["format"]) == (alice, f"session {session.pk}", "json")


def test_deleting_a_dataset_a_session_and_a_project_is_audited(client, alice, project):
    dataset = DatasetFactory(project=project, name="sales.csv")
    session = AnalysisSessionFactory(project=project, title="Q1")
    client.force_login(alice)

    client.post(reverse("projects:dataset-delete", args=[dataset.pk]))
    client.post(reverse("analysis:session-delete", args=[session.pk]))
    client.post(reverse("projects:project-delete", args=[project.pk]))

    assert _events(AuditEvent.Event.DELETION) == [
        ("alice@example.com", f"dataset {dataset.pk} 'sales.csv' of project {project.pk}"),
        ("alice@example.com", f"session {session.pk} 'Q1' of project {project.pk}"),
        ("alice@example.com", f"project {project.pk} 'Sales analysis'"),
    ]


def test_a_code_step_with_sandbox_refusals_is_audited_and_one_without_is_not(alice, project):
    run = RunFactory(session=AnalysisSessionFactory(project=project), status=Run.Status.RUNNING)

    step_create(run=run, kind=Step.Kind.CODE, content="df.mean()")
    step_create(run=run, kind=Step.Kind.CODE, content="import socket", data={"refusals": ["import of 'socket' is not allowed"]})  # fmt: skip

    event = AuditEvent.objects.get(event=AuditEvent.Event.SANDBOX_REFUSAL)
    assert event.actor == alice
    assert event.target == f"run {run.pk} of session {run.session_id}"
    assert event.detail["refusals"] == ["import of 'socket' is not allowed"]
