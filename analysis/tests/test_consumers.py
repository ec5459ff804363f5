"""The session websocket: snapshot after the client's cursor, no duplicates, members only."""

from __future__ import annotations

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from analysis.tests.factories import AnalysisSessionFactory, RunFactory, StepFactory
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
