"""The real OpenAI-compatible client path (LLM_BASE_URL) against a loopback server the test starts."""

from __future__ import annotations

import pydantic_ai.models
import pytest
from pydantic_ai import Agent

from analysis.agent.models import model_build
from analysis.models import Run
from analysis.tests.conftest import SALES
from analysis.tests.factories import AnalysisSessionFactory
from analysis.tests.llm_server import LoopbackLLM, text_reply, tool_reply
from analysis.tests.test_agent import _run_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def allow_http_model(monkeypatch):
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)


def _ask_through_endpoint(llm: LoopbackLLM, settings, *, project, user, question: str) -> Run:
    """Point the app at the loopback endpoint, ask in a new session, and let a real worker process the run."""
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.OPENROUTER_API_KEY = llm.base_url, "loop-model", ""
    session = AnalysisSessionFactory(project=project, user=user, model="local:loop-model")
    return _run_with(None, session, user, question)


def test_a_local_endpoint_drives_a_full_run_with_tool_calls_and_usage(
    settings, allow_http_model, project, alice, sales
):
    replies = [
        tool_reply(
            "import pandas as pd\ndf = pd.read_csv('sales.csv')\nfinal_result = int(df['quantity'].sum())", "Summing."
        ),
        text_reply("Total quantity is **106**."),
    ]
    with LoopbackLLM(replies) as llm:
        run = _ask_through_endpoint(llm, settings, project=project, user=alice, question="total quantity?")

    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.steps.get(kind="output").data["final_result"] == int(SALES["quantity"].sum())
    assert (run.tokens_in, run.tokens_out) == (240, 60)  # two requests, from the server's usage data
    assert run.model == "loop-model"
    assert llm.requests[0]["tools"][0]["function"]["name"] == "run_python"
    assert "sales.csv" in llm.requests[0]["messages"][0]["content"]  # the datasets are in the system prompt


def test_the_local_endpoint_also_works_streamed(settings, allow_http_model):
    with LoopbackLLM([text_reply("Streaming works fine.")]) as llm:
        settings.LLM_BASE_URL, settings.LLM_MODEL = llm.base_url, "loop-model"
        agent = Agent(model_build("local:loop-model"))

        async def stream() -> str:
            async with agent.run_stream("hi") as result:
                return "".join([delta async for delta in result.stream_text(delta=True)])

        from asgiref.sync import async_to_sync

        text = async_to_sync(stream)()

    assert text == "Streaming works fine."
    assert llm.requests[0]["stream"] is True


def test_a_server_error_is_retried_then_reported_readably(settings, allow_http_model, project, alice):
    settings.AGENT_RETRY_DELAY = 0.01
    with LoopbackLLM([]) as llm:
        llm.server.RequestHandlerClass.do_POST = lambda self: self.send_error(503, "overloaded")
        run = _ask_through_endpoint(llm, settings, project=project, user=alice, question="anything")

    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "HTTP 503" in run.error and "after 4 attempts" in run.error


def test_runs_of_one_worker_loop_share_one_connection_pool(settings):
    """A client per run cost a TLS context on the worker's loop (tens of ms, every run of the worker waiting)."""
    import asyncio

    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.OPENROUTER_API_KEY = "http://127.0.0.1:9/v1", "m", ""

    async def two_runs():
        return model_build("local:m").client._client, model_build("local:m").client._client

    first, second = asyncio.run(two_runs())
    other_loop, _ = asyncio.run(two_runs())

    assert first is second
    assert other_loop is not first  # a pool belongs to its loop


def test_runs_on_one_loop_reuse_the_endpoints_model_and_a_changed_endpoint_gets_its_own(settings):
    """An SDK client per run cost a platform probe in a thread and the client's setup on the worker's loop."""
    import asyncio

    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.OPENROUTER_API_KEY = "http://127.0.0.1:9/v1", "m", ""

    async def builds():
        first, again = model_build("local:m"), model_build("local:m")
        settings.LLM_BASE_URL = "http://127.0.0.1:10/v1"
        return first, again, model_build("local:m")

    first, again, moved = asyncio.run(builds())

    assert first is again
    assert moved is not first
    assert str(moved.client.base_url) == "http://127.0.0.1:10/v1/"
