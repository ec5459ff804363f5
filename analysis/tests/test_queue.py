"""The run queue: per-user cap, kernel affinity in the claim, queue position and what a run waits for,
the worker registry, and the reaper's handling of dead workers' runs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from analysis import selectors, services
from analysis.models import AnalysisSession, Run, Step, WorkerProcess
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from analysis.worker import Worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_worker():
    return services.worker_register(worker_id="host:1:live", hostname="host", pid=1, concurrency=16)


def _queued(session, **kwargs) -> Run:
    return RunFactory(session=session, status=Run.Status.QUEUED, **kwargs)


def _running(session, worker="host:1:live") -> Run:
    return RunFactory(session=session, status=Run.Status.RUNNING, worker_id=worker, heartbeat_at=timezone.now())


def test_a_user_at_the_cap_waits_while_another_users_run_is_claimed(project, alice, bob, settings, live_worker):
    settings.RUN_MAX_ACTIVE_PER_USER = 2
    for _ in range(2):
        _running(AnalysisSessionFactory(project=project, user=alice))
    alices_third = _queued(AnalysisSessionFactory(project=project, user=alice))
    bobs = _queued(AnalysisSessionFactory(project=project, user=bob))

    claimed = services.run_claim(worker_id="host:1:live")
    again = services.run_claim(worker_id="host:1:live")

    assert claimed.pk == bobs.pk
    assert again is None  # alice's third question stays queued
    alices_third.refresh_from_db()
    assert alices_third.status == Run.Status.QUEUED
    info = selectors.run_queue_info(run=alices_third)
    assert info.waiting_for == "your other questions to finish"
    assert info.text == "1st in the queue, waiting for your other questions to finish"


def test_a_batch_claim_takes_the_oldest_runs_and_counts_its_own_claims_against_the_cap(
    project, alice, bob, charlie, settings, live_worker
):
    settings.RUN_MAX_ACTIVE_PER_USER = 2
    _running(AnalysisSessionFactory(project=project, user=alice))
    queued = [_queued(AnalysisSessionFactory(project=project, user=u)) for u in (alice, alice, bob, bob, bob, charlie)]
    elsewhere = services.worker_register(worker_id="host:2:other", hostname="host", pid=2, concurrency=16)
    held = AnalysisSessionFactory(project=project, user=charlie, kernel_worker=elsewhere.pk)
    _queued(held)  # its variables live on the other worker

    claimed = services.runs_claim(worker_id=live_worker.pk, limit=10)

    # alice: one running, so one more; bob: two of three; charlie: the run whose kernel is not elsewhere
    assert [r.pk for r in claimed] == [queued[0].pk, queued[2].pk, queued[3].pk, queued[5].pk]
    assert {r.status for r in claimed} == {Run.Status.RUNNING} and {r.worker_id for r in claimed} == {live_worker.pk}
    assert services.runs_claim(worker_id=live_worker.pk, limit=10) == []
    assert [r.pk for r in services.runs_claim(worker_id=elsewhere.pk, limit=1)] == [held.runs.get().pk]


def test_a_batch_claim_takes_no_more_than_its_limit(project, alice, bob, charlie, live_worker):
    queued = [_queued(AnalysisSessionFactory(project=project, user=u)) for u in (alice, bob, charlie)]

    claimed = services.runs_claim(worker_id=live_worker.pk, limit=2)

    assert [r.pk for r in claimed] == [queued[0].pk, queued[1].pk]
    assert Run.objects.get(pk=queued[2].pk).status == Run.Status.QUEUED


def test_a_claim_with_nothing_queued_is_one_read(session, live_worker, django_assert_num_queries):
    _running(session)  # a finished or running run wakes workers; with nothing queued they only look

    with django_assert_num_queries(1):
        claimed = services.runs_claim(worker_id=live_worker.pk, limit=8)

    assert claimed == []


def test_taking_a_kernel_reports_who_held_it_and_writes_nothing_when_this_worker_already_does(
    session, django_assert_num_queries
):
    AnalysisSession.objects.filter(pk=session.pk).update(kernel_worker="", kernel_lost_reason="the kernel was idle")
    session.refresh_from_db()

    previous = services.session_kernel_take(session=session, worker_id="host:1:live")
    with django_assert_num_queries(0):
        again = services.session_kernel_take(session=session, worker_id="host:1:live")

    assert previous == ("", "the kernel was idle")
    assert again == ("host:1:live", "")
    assert AnalysisSession.objects.values_list("kernel_worker", "kernel_lost_reason").get(pk=session.pk) == (
        "host:1:live",
        "",
    )


def test_queued_runs_know_their_place_and_that_they_wait_for_a_free_worker(project, alice, bob, charlie, live_worker):
    runs = [_queued(AnalysisSessionFactory(project=project, user=u)) for u in (alice, bob, charlie)]

    infos = [selectors.run_queue_info(run=r) for r in runs]

    assert [i.position for i in infos] == [1, 2, 3]
    assert infos[1].text == "2nd in the queue, waiting for a free worker"


def test_with_no_live_worker_a_queued_run_says_so(session, alice):
    WorkerProcess.objects.create(
        id="gone", hostname="h", pid=2, started_at=timezone.now(), heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    run = _queued(session)

    assert selectors.run_queue_info(run=run).waiting_for == "a run worker to start (none is running)"


def test_a_session_whose_kernel_lives_on_another_live_worker_is_left_to_it(session, alice, live_worker):
    AnalysisSession.objects.filter(pk=session.pk).update(kernel_worker=live_worker.pk)
    run = _queued(session)

    assert services.run_claim(worker_id="host:2:other") is None
    assert selectors.run_queue_info(run=run).waiting_for == "the worker that holds this session's variables"
    assert services.run_claim(worker_id=live_worker.pk).pk == run.pk


def test_a_session_whose_kernel_worker_died_is_taken_by_any_worker(session, alice, live_worker):
    WorkerProcess.objects.filter(pk=live_worker.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    AnalysisSession.objects.filter(pk=session.pk).update(kernel_worker=live_worker.pk)
    run = _queued(session)

    assert services.run_claim(worker_id="host:2:other").pk == run.pk


def test_the_run_detail_api_shows_queue_position_and_what_it_waits_for(session, alice, live_worker):
    run = _queued(session)
    client = APIClient()
    client.force_authenticate(alice)

    body = client.get(f"/api/v1/runs/{run.pk}/").json()

    assert body["queue_position"] == 1
    assert body["waiting_for"] == "a free worker"
    assert body["queue_message"] == "1st in the queue, waiting for a free worker"


def test_a_claimed_run_has_no_queue_position_in_the_api(session, alice, live_worker):
    run = _running(session)
    client = APIClient()
    client.force_authenticate(alice)

    body = client.get(f"/api/v1/runs/{run.pk}/").json()

    assert body["queue_position"] is None and body["waiting_for"] is None


def test_the_session_page_shows_where_a_queued_run_stands(client, session, alice, live_worker):
    _queued(session)
    client.force_login(alice)

    html = client.get(reverse("analysis:session-detail", args=[session.pk])).content.decode()

    assert "1st in the queue, waiting for a free worker" in html


def test_ordinals_read_naturally():
    assert [selectors.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"
    ]  # fmt: skip


def test_the_reaper_finishes_a_run_whose_answer_was_saved_instead_of_failing_it(session, settings):
    run = _running(session, worker="dead")
    StepFactory(run=run, ordinal=1, kind=Step.Kind.ANSWER, content="42 widgets")
    Run.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 1)
    )

    reaped = services.runs_reap_stale()

    run.refresh_from_db()
    assert reaped == [run.pk]
    assert run.status == Run.Status.SUCCEEDED and run.answer == "42 widgets" and run.error == ""


def test_one_heartbeat_refreshes_all_of_a_workers_runs_and_reports_cancels(project, alice, bob):
    runs = [_running(AnalysisSessionFactory(project=project, user=u), worker="w") for u in (alice, bob)]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(heartbeat_at=timezone.now() - timedelta(minutes=1))
    Run.objects.filter(pk=runs[1].pk).update(cancel_requested=True)

    cancels = services.runs_heartbeat(worker_id="w", run_ids=[r.pk for r in runs])

    assert cancels == {runs[1].pk}
    assert all(timezone.now() - r.heartbeat_at < timedelta(seconds=5) for r in Run.objects.filter(worker_id="w"))


def test_the_worker_registry_reports_kernels_and_memory_and_a_clean_stop_frees_its_sessions(session):
    services.worker_register(worker_id="h:9:x", hostname="h", pid=9, concurrency=16)
    AnalysisSession.objects.filter(pk=session.pk).update(kernel_worker="h:9:x")

    services.worker_heartbeat(worker_id="h:9:x", runs_active=3, kernels=5, kernel_pss_mb=812.34, worker_pss_mb=120)
    row = WorkerProcess.objects.get(pk="h:9:x")
    services.worker_unregister(worker_id="h:9:x")

    assert (row.runs_active, row.kernels, row.kernel_pss_mb) == (3, 5, 812.3)
    session.refresh_from_db()
    assert session.kernel_worker == ""
    assert session.kernel_lost_reason == "the worker holding them was restarted"
    assert not WorkerProcess.objects.exists()


def test_a_heartbeat_writes_a_removed_registry_row_again_but_not_once_its_worker_is_stopping():
    figures = {"runs_active": 0, "kernels": 0, "kernel_pss_mb": 0.0, "worker_pss_mb": 0.0}

    services.worker_heartbeat(worker_id="h:3:gone", **figures)
    restored = WorkerProcess.objects.filter(pk="h:3:gone").values_list("hostname", "pid").first()
    WorkerProcess.objects.all().delete()
    services.worker_heartbeat(worker_id="h:4:stopping", recreate=False, **figures)

    assert restored == ("h", 3)
    assert not WorkerProcess.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_clean_stop_during_a_heartbeat_leaves_no_registry_row(monkeypatch, settings):
    """The stop lands while a beat is in flight (held up reading memory); a row it wrote back after
    worker_unregister would make run_start refuse every question as if all workers had died."""
    from codingagent.lib import procmem

    settings.RUN_HEARTBEAT_SECONDS = 0
    in_beat, real = threading.Event(), procmem.tree_memory

    def slow_tree_memory():
        in_beat.set()
        time.sleep(1.0)
        return real()

    monkeypatch.setattr(procmem, "tree_memory", slow_tree_memory)
    worker = Worker(worker_id="h:5:stop", executor_factory=lambda workspace: None)
    serving = threading.Thread(target=worker.run_forever)
    serving.start()
    assert in_beat.wait(10)

    worker.stopping = True
    serving.join(20)
    worker._heartbeat.join(10)  # had the stop not waited for it, the beat would end only now

    assert not serving.is_alive()
    assert not WorkerProcess.objects.exists()
    assert not selectors.run_queue_unserved()


def test_asking_renders_nothing_for_other_viewers_so_the_request_stays_short(
    api, session, live_worker, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    # The queued state is published by a worker (its claim, or its queue flush); rendering it in the request
    # took 8 of its 18 queries and half of its time.
    with django_assert_max_num_queries(10), django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/sessions/{session.pk}/query", {"question": "How many rows?"}, format="json")
    assert response.status_code == 202


def test_a_worker_publishes_a_waiting_question_once_and_every_queued_run_when_the_queue_moves(
    project, alice, bob, live_worker
):
    from analysis.streaming import push

    push.queue_push()
    push.queue_flush()  # whatever an earlier test left: every queued run published, the record reset
    services.run_start(session=AnalysisSessionFactory(project=project, user=alice), user=alice, question="one")
    assert push.queue_flush() == 1  # the new question reaches the session's viewers
    assert push.queue_flush() == 0  # and is not published again while nothing moves
    services.run_start(session=AnalysisSessionFactory(project=project, user=bob), user=bob, question="two")
    assert push.queue_flush() == 1
    push.queue_push()  # a claim, an end or a cancel: every position may have changed
    assert push.queue_flush() == 2
