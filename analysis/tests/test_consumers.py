"""The session websocket: snapshot after the client's cursor, no duplicates, members only."""

from __future__ import annotations

import asyncio
import re

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.tests.factories import UserFactory
from analysis.models import Run, Step
from analysis.services import run_start
from analysis.streaming import push
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from analysis.worker import Worker
from codingagent.routing import websocket_urlpatterns
from projects.models import ProjectMember
from projects.tests.factories import ProjectMemberFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _communicator(user, session_pk: int, after: int = 0) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/sessions/{session_pk}/?after={after}")
    comm.scope["user"] = user
    return comm


async def _receive_until(comm: WebsocketCommunicator, marker: str) -> str:
    received = ""
    while marker not in received:
        received += await comm.receive_from(timeout=5)
    return received


async def _publish_run_state(run: Run) -> None:
    """What the worker publishes when a run changes (through Redis, or a datagram to the web process)."""
    event = await database_sync_to_async(push.run_event)(run_id=run.pk)
    await get_channel_layer().group_send(push.session_group(run.session_id), event)


@pytest.fixture
def steps(project):
    session = AnalysisSessionFactory(project=project)
    run = RunFactory(session=session)
    made = [StepFactory(run=run, ordinal=i, kind="thought", content=f"step {i}") for i in (1, 2, 3)]
    return session, made


async def test_a_member_gets_the_steps_after_its_cursor_in_order_without_duplicates(alice, steps):
    session, made = steps
    comm = _communicator(alice, session.pk, after=made[0].pk)

    connected, _ = await comm.connect()
    message = await comm.receive_from(timeout=5)
    await comm.disconnect()

    assert connected
    assert f'id="step-{made[0].pk}"' not in message
    assert message.index(f'id="step-{made[1].pk}"') < message.index(f'id="step-{made[2].pk}"')


async def test_a_non_member_is_refused(charlie, steps):
    session, _made = steps
    comm = _communicator(charlie, session.pk)

    connected, _ = await comm.connect()
    await comm.disconnect()

    assert not connected


async def test_a_reconnecting_client_gets_exactly_the_missing_steps(alice, steps):
    session, made = steps
    first = _communicator(alice, session.pk, after=0)
    await first.connect()
    snapshot = await first.receive_from(timeout=5)
    await first.disconnect()
    run = made[0].run
    late = await database_sync_to_async(StepFactory)(run=run, ordinal=4, kind="answer", content="done")
    again = _communicator(alice, session.pk, after=made[2].pk)

    await again.connect()
    replay = await again.receive_from(timeout=5)
    await again.disconnect()

    assert all(f'id="step-{s.pk}"' in snapshot for s in made)
    assert f'id="step-{late.pk}"' in replay
    assert not any(f'id="step-{s.pk}"' in replay for s in made)


async def test_a_live_run_streams_every_step_once_in_order_then_its_final_status(alice, project, sales):
    """Runs against the configured layer: in-memory (the DB tailer publishes) or Redis (the worker does)."""
    session = await database_sync_to_async(AnalysisSessionFactory)(project=project, user=alice)
    comm = _communicator(alice, session.pk)
    await comm.connect()
    assert await comm.receive_nothing(timeout=0.2)  # nothing to replay in a new session
    run = await database_sync_to_async(run_start)(session=session, user=alice, question="mean revenue by region")
    worker = Worker(worker_id="ws-test")

    job = asyncio.create_task(asyncio.to_thread(worker.run_forever, once=True))
    received = ""
    while 'data-status="succeeded"' not in received:
        received += await comm.receive_from(timeout=60)
    await job
    await comm.disconnect()
    await asyncio.to_thread(worker.close)

    pks = [int(pk) for pk in re.findall(r'data-step-pk="(\d+)"', received)]
    expected = await database_sync_to_async(lambda: list(Step.objects.filter(run=run).values_list("pk", flat=True)))()
    assert pks == sorted(pks) and pks == expected  # all of them, once each, in order


async def test_a_pushed_run_state_gives_a_viewer_no_composer(alice, project):
    """A viewer's page has no composer: an out-of-band composer would find no target (an htmx console error)."""
    viewer = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(ProjectMemberFactory)(project=project, user=viewer, role=ProjectMember.Role.VIEWER)
    run = await database_sync_to_async(RunFactory)(session__project=project, status=Run.Status.RUNNING)
    owner_comm, viewer_comm = _communicator(alice, run.session_id), _communicator(viewer, run.session_id)
    for comm in (owner_comm, viewer_comm):
        await comm.connect()
        await comm.receive_from(timeout=5)  # the snapshot

    await _publish_run_state(run)
    owner_message = await owner_comm.receive_from(timeout=5)
    viewer_message = await viewer_comm.receive_from(timeout=5)
    await owner_comm.disconnect()
    await viewer_comm.disconnect()

    assert f'id="run-{run.pk}-status"' in owner_message and f'id="run-{run.pk}-status"' in viewer_message
    assert 'id="composer"' in owner_message
    assert "composer" not in viewer_message and 'id="session-usage"' in viewer_message


async def test_a_client_missing_steps_gets_them_once_before_the_final_status(alice, project):
    run = await database_sync_to_async(RunFactory)(session__project=project, status=Run.Status.RUNNING)
    first = await database_sync_to_async(StepFactory)(run=run, ordinal=1)
    comm = _communicator(alice, run.session_id)
    await comm.connect()
    snapshot = await comm.receive_from(timeout=5)

    # Two steps whose pushes were lost, then the run ends: the final status must not overtake them.
    missed = [await database_sync_to_async(StepFactory)(run=run, ordinal=n) for n in (2, 3)]
    await database_sync_to_async(Run.objects.filter(pk=run.pk).update)(status=Run.Status.SUCCEEDED)
    await _publish_run_state(run)
    received = await _receive_until(comm, 'data-status="succeeded"')
    await comm.disconnect()

    assert f'id="step-{first.pk}"' in snapshot and f'id="step-{first.pk}"' not in received
    final = received.index('data-status="succeeded"')
    assert [received.count(f'id="step-{s.pk}"') for s in missed] == [1, 1]
    assert received.index(f'id="step-{missed[0].pk}"') < received.index(f'id="step-{missed[1].pk}"') < final


async def test_steps_saved_without_any_push_still_reach_an_embedded_client(alice, project):
    """Embedded mode: the web process's DB tick publishes what no datagram brought (e.g. a lost one)."""
    if push.layer_is_shared():
        pytest.skip("with a shared layer the worker publishes; nothing tails the database")
    session = await database_sync_to_async(AnalysisSessionFactory)(project=project, user=alice)
    comm = _communicator(alice, session.pk)
    await comm.connect()
    assert await comm.receive_nothing(timeout=0.2)  # an empty snapshot: nothing is sent
    run = await database_sync_to_async(RunFactory)(session=session, status=Run.Status.RUNNING)
    made = [await database_sync_to_async(StepFactory)(run=run, ordinal=n) for n in (1, 2)]

    received = await _receive_until(comm, f'id="step-{made[1].pk}"')
    await comm.disconnect()

    assert received.count(f'id="step-{made[0].pk}"') == 1
    assert received.index(f'id="run-{run.pk}"') < received.index(f'id="step-{made[0].pk}"')
    assert received.index(f'id="step-{made[0].pk}"') < received.index(f'id="step-{made[1].pk}"')
