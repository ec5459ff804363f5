"""The agent loop driven by scripted models (pydantic-ai FunctionModel) over the real sandbox."""

from __future__ import annotations

import threading

import pytest
from pydantic_ai import exceptions as ai_exc
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from analysis.models import Run, Step
from analysis.services import run_start
from analysis.tests.conftest import SALES
from analysis.tests.factories import AnalysisSessionFactory
from analysis.worker import Worker

pytestmark = pytest.mark.django_db


def _tool_returns(messages) -> list[str]:
    return [p.content for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]


def script(*responses):
    """A model that answers the n-th request with the n-th scripted response."""
    calls = {"n": 0}

    def model(messages, info):
        i = min(calls["n"], len(responses) - 1)
        calls["n"] += 1
        item = responses[i]
        return item(messages) if callable(item) else item

    return FunctionModel(model, model_name="scripted")


def code_call(code: str, thought: str = "Let me compute it.") -> ModelResponse:
    return ModelResponse(parts=[TextPart(thought), ToolCallPart("run_python", {"code": code})])


def _run_with(model, session, alice, question="What is the total revenue?", executor_factory=None) -> Run:
    """Ask `question` and let one real worker (`model`; None: the session's configured one) process it."""
    run = run_start(session=session, user=alice, question=question)
    worker = Worker(worker_id="t", model=model, executor_factory=executor_factory)
    try:
        worker.run_forever(once=True)
    finally:
        worker.close()
    run.refresh_from_db()
    return run


def test_a_scripted_run_saves_thought_code_output_and_answer_in_order(session, sales, alice):
    model = script(
        code_call("import pandas as pd\ndf = pd.read_csv('sales.csv')\nfinal_result = float(df['revenue'].sum())"),
        lambda messages: ModelResponse(parts=[TextPart(f"Total revenue is {_tool_returns(messages)[-1][-8:]}")]),
    )

    run = _run_with(model, session, alice)

    assert run.status == Run.Status.SUCCEEDED
    assert list(run.steps.values_list("kind", flat=True)) == ["thought", "code", "output", "answer"]
    assert run.steps.get(kind="output").data["final_result"] == pytest.approx(SALES["revenue"].sum())
    assert run.answer.startswith("Total revenue is")
    assert run.tokens_in > 0 and run.tokens_out > 0


def test_runs_driven_at_once_by_the_one_shared_agent_each_get_their_own_tool_calls_and_answers(
    project, sales, alice, bob
):
    def by_question(messages, info):  # the question names its number; one model serves both runs
        number = next(p.content for m in messages for p in m.parts if p.part_kind == "user-prompt").split()[-1]
        if not _tool_returns(messages):
            return ModelResponse(parts=[ToolCallPart("run_python", {"code": f"final_result = {number}"})])
        return ModelResponse(parts=[TextPart(f"It is {number}.")])

    sessions = [AnalysisSessionFactory(project=project, user=u) for u in (alice, bob)]
    runs = [run_start(session=s, user=s.user, question=f"What is {n}") for s, n in zip(sessions, (7, 8), strict=True)]
    worker = Worker(worker_id="t", model=FunctionModel(by_question, model_name="scripted"), concurrency=2)
    try:
        worker.run_forever(once=True)
    finally:
        worker.close()

    for run, number in zip(runs, (7, 8), strict=True):
        run.refresh_from_db()
        assert run.status == Run.Status.SUCCEEDED, run.error
        assert run.steps.get(kind="code").content == f"final_result = {number}"
        assert run.steps.get(kind="output").data["final_result"] == number
        assert run.answer == f"It is {number}."


def test_an_error_goes_back_to_the_model_which_fixes_its_code(session, sales, alice):
    def fix(messages):
        assert "KeyError" in _tool_returns(messages)[-1]  # the model sees the error it caused
        return code_call("final_result = float(df['revenue'].mean())", "The column is lowercase; retrying.")

    model = script(
        code_call("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf['Revenue'].mean()"),
        fix,
        ModelResponse(parts=[TextPart("Mean revenue is 47.38.")]),
    )

    run = _run_with(model, session, alice)

    assert run.status == Run.Status.SUCCEEDED
    kinds = list(run.steps.values_list("kind", flat=True))
    assert kinds == ["thought", "code", "error", "thought", "code", "output", "answer"]
    assert "KeyError" in run.steps.get(kind="error").content


def test_the_step_budget_ends_a_runaway_run_with_a_clear_message(session, sales, alice, settings):
    settings.AGENT_MAX_TOOL_CALLS = 2
    model = script(code_call("x = 1"))  # never answers

    run = _run_with(model, session, alice)

    assert run.status == Run.Status.FAILED
    assert "Stopped after 2 code executions" in run.error
    assert run.steps.filter(kind=Step.Kind.CODE).count() == 2


def test_transient_model_errors_are_retried_then_the_run_succeeds(session, sales, alice, settings):
    settings.AGENT_RETRY_DELAY = 0.01
    failures = {"left": 2}

    def flaky(messages, info):
        if failures["left"]:
            failures["left"] -= 1
            raise ai_exc.ModelHTTPError(status_code=429, model_name="scripted", body="rate limited")
        return ModelResponse(parts=[TextPart("Done.")])

    run = _run_with(FunctionModel(flaky, model_name="scripted"), session, alice)

    assert run.status == Run.Status.SUCCEEDED
    assert run.answer == "Done."


def test_a_persistent_model_error_fails_the_run_with_a_readable_error(session, sales, alice, settings):
    settings.AGENT_RETRY_DELAY = 0.01

    def down(messages, info):
        raise ai_exc.ModelHTTPError(status_code=503, model_name="scripted", body="upstream unavailable")

    run = _run_with(FunctionModel(down, model_name="scripted"), session, alice)

    assert run.status == Run.Status.FAILED
    assert "HTTP 503" in run.error and "after 4 attempts" in run.error


@pytest.mark.django_db(transaction=True)
def test_cancel_kills_the_sandbox_execution_and_ends_the_run_cancelled_quickly(session, sales, alice):
    model = script(code_call("import time\ntime.sleep(25)"), ModelResponse(parts=[TextPart("never")]))
    run = run_start(session=session, user=alice, question="slow")
    timer = threading.Timer(1.0, lambda: Run.objects.filter(pk=run.pk).update(cancel_requested=True))
    worker = Worker(worker_id="t", model=model)

    timer.start()
    try:
        import time

        started = time.monotonic()
        worker.run_forever(once=True)
        elapsed = time.monotonic() - started
    finally:
        worker.close()
    run.refresh_from_db()

    assert run.status == Run.Status.CANCELLED
    assert run.error == "Stopped by the user."
    assert elapsed < 6


def test_the_time_budget_stops_a_long_execution_with_a_clear_message(session, sales, alice, settings):
    settings.AGENT_RUN_TIMEOUT = 1
    model = script(code_call("import time\ntime.sleep(20)"), ModelResponse(parts=[TextPart("never")]))

    run = _run_with(model, session, alice)

    assert run.status == Run.Status.FAILED
    assert "time budget (1 s)" in run.error


def test_malformed_tool_calls_are_sent_back_then_fail_the_run_readably(session, sales, alice):
    model = script(ModelResponse(parts=[ToolCallPart("run_python", {"source": "x = 1"})]))  # wrong argument name

    run = _run_with(model, session, alice)

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("The model returned something unusable")
    assert not run.steps.filter(kind="code").exists()
