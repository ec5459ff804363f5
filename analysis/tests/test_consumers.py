"""The session websocket: snapshot after the client's cursor, no duplicates, members only."""

from __future__ import annotations

import asyncio
import re

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from analysis.models import Step
from analysis.services import run_start
from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
from analysis.worker import Worker
from codingagent.routing import websocket_urlpatterns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _communicator(user, session_pk: int, after: int = 0) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/sessions/{session_pk}/?after={after}")
    comm.scope["user"] = user
    return comm


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
