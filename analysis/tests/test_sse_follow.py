"""An SSE follower of a running run: woken by what the worker publishes, not by polling the database."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from channels.db import database_sync_to_async

from analysis import api, services
from analysis.models import Run, Step
from analysis.tests.factories import AnalysisSessionFactory, RunFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def running(project):
    session = AnalysisSessionFactory(project=project)
    return RunFactory(session=session, status=Run.Status.RUNNING)


async def test_a_new_step_reaches_the_stream_when_it_is_published_not_at_the_next_poll(running):
    stream = api.run_event_stream(run_id=running.pk, session_id=running.session_id, after_ordinal=0, poll=30)
    assert (await anext(stream)).startswith(": stream")
    following = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)  # the stream is waiting now
    saved = time.monotonic()

    await database_sync_to_async(services.step_create)(run=running, kind=Step.Kind.THOUGHT, content="fresh step")
    event = await asyncio.wait_for(following, 10)
    waited = time.monotonic() - saved
    await stream.aclose()

    assert "event: step" in event and "fresh step" in event
    assert waited < 5  # the 30 s poll did not bring it


async def test_a_quiet_run_costs_one_database_read_per_poll_interval(running, monkeypatch):
    reads = []
    tick = api._stream_tick_through_outages
    monkeypatch.setattr(api, "_stream_tick_through_outages", lambda *a: reads.append(1) or tick(*a))
    stream = api.run_event_stream(run_id=running.pk, session_id=running.session_id, after_ordinal=0, poll=0.5)
    await anext(stream)
    following = asyncio.ensure_future(anext(stream))

    await asyncio.sleep(2.2)
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await stream.aclose()

    assert 3 <= len(reads) <= 6  # every 0.5 s; polling every 0.1 s read 22 times
