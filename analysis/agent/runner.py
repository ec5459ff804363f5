"""Driving one run: the pydantic-ai agent, its ``run_python`` tool over the sandbox, budgets and outcomes.

The worker drives many runs in one event loop (``analysis.worker``); each run's ORM calls go through the
``db`` callable it passes (a thread pool with a connection per thread, retrying through database outages),
and the blocking sandbox call goes to a thread, so neither waits inside the loop. ``agent_execute`` (a plain
thread calling in) runs ORM calls back in the caller's thread, as ``sync_to_async`` does by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.template import Context, Engine
from pydantic_ai import Agent, RunContext, Tool
from pydantic_ai import exceptions as ai_exc
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import Model
from pydantic_ai.usage import UsageLimits

from analysis import selectors, services
from analysis.agent.models import OFFLINE, RetryingModel, model_build, model_key_resolve
from analysis.agent.observation import observation_text, traceback_trimmed
from analysis.claims import ValuePool
from analysis.models import AnalysisSession, Artifact, Run, Step

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
_ENGINE = Engine(dirs=[str(PROMPTS_DIR)], autoescape=False)
PREVIEW_ROWS = 5


class Executor(Protocol):
    """What the agent needs from a sandbox (``analysis.sandbox.Sandbox`` satisfies it)."""

    def run(self, code: str) -> Any: ...
    def cancel(self) -> None: ...


DbCall = Callable[..., Awaitable[Any]]  # await db(fn, *args, **kwargs): fn runs where ORM calls may run


async def db_inline(fn, *args, **kwargs):
    """The default ``db``: the calling thread's connection (see ``agent_execute``)."""
    return await sync_to_async(fn)(*args, **kwargs)


class StepBudgetExceeded(Exception):
    pass


class RunStopped(Exception):
    """The controller stopped the run (user cancel or time budget)."""


@dataclass
class RunController:
    """Shared between the agent (event loop thread), the worker thread and the heartbeat thread."""

    deadline: float
    reason: str | None = None  # "cancelled" | "timeout"
    executor: Executor | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task | None = None
    executing: bool = False  # a kernel call is in flight (see ``stop``)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self, reason: str) -> None:
        """Stop now: kill the sandbox execution or cancel the pending model call. Thread-safe, idempotent.

        While code executes, the task is not cancelled: ``_execute`` keeps killing the kernel until the call
        returns (a kernel still starting has nothing to kill yet), so no execution outlives its run."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
        if self.executor is not None:
            with contextlib.suppress(Exception):  # the execution may have just ended
                self.executor.cancel()
        if self._loop is not None and self._task is not None and not self.executing:
            self._loop.call_soon_threadsafe(self._task.cancel)

    def check(self) -> None:
        if self.reason is None and time.monotonic() > self.deadline:
            self.stop("timeout")
        if self.reason is not None:
            raise RunStopped(self.reason)


@dataclass
class AgentDeps:
    run: Run
    executor: Executor
    controller: RunController
    max_tool_calls: int
    workspace: str | None = None
    db: DbCall = db_inline
    # Said to the model with the first observation (e.g. the session's variables were cleared), then cleared.
    notice: str | None = None
    tool_calls: int = 0
    timings: list[dict] = field(default_factory=list)
    # Every number the run's steps computed, gathered as they are saved, so the answer's claims are matched at the
    # end without reading the tables back from storage (analysis/claims.py).
    values: ValuePool = field(default_factory=ValuePool)
    artifact_budget: services.ArtifactBudget = field(default_factory=services.ArtifactBudget)
    kernel_lost: str | None = None  # killed_reason of the last execution when it ended the kernel


@dataclass
class AgentOutcome:
    status: str
    answer: str = ""
    error: str = ""
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal("0")
    tool_calls: int = 0
    timings: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    kernel_lost: str | None = None  # the last execution killed the kernel ("timeout", "crashed", …)


# --- prompt ----------------------------------------------------------------------------------------


_READERS = {"csv": "pd.read_csv({name!r})", "tsv": "pd.read_csv({name!r}, sep='\\t')",
            "parquet": "pd.read_parquet({name!r})", "json": "pd.read_json({name!r})", "xlsx": "pd.read_excel({name!r})"}  # fmt: skip


def _table_prompt_info(table: dict) -> dict:
    """Columns (with how to parse dates stored as text) and a few preview rows of one table."""
    pv = table.get("preview") or {}
    columns = [
        {
            "name": c.get("name"),
            "dtype": c.get("dtype", "?"),
            "kind": c.get("kind", ""),
            "date_format": c.get("date_format", ""),
            "missing": c.get("missing") or 0,
            "samples": _column_samples(c, pv),
        }
        for c in table.get("columns") or []
    ]
    preview = ""
    if pv.get("columns"):
        header = " | ".join(map(str, pv["columns"]))
        rows = [" | ".join("" if v is None else str(v) for v in row) for row in (pv.get("rows") or [])[:PREVIEW_ROWS]]
        preview = "\n".join([header, *rows])
    return {"columns": columns, "preview": preview}


def dataset_prompt_info(dataset) -> dict:
    """What the prompt (and the offline analyst) knows of a dataset: shape, columns, preview, how to load it.

    A workbook lists every sheet as its own table with its ``pd.read_excel(name, sheet_name=...)`` line.
    """
    profile = dataset.profile or {}
    info = _table_prompt_info(profile)
    sheets = [
        {
            "name": str(sheet.get("name", "")),
            "rows": sheet.get("rows", 0),
            "cols": sheet.get("column_count", 0),
            "load": f"pd.read_excel({dataset.name!r}, sheet_name={str(sheet.get('name', ''))!r})",
            **_table_prompt_info(sheet),
        }
        for sheet in profile.get("sheets") or []
        if isinstance(sheet, dict)
    ]
    return {
        "name": dataset.name,
        "rows": dataset.row_count,
        "cols": dataset.column_count or len(info["columns"]),
        "format": dataset.format,
        "load": _READERS.get(dataset.format, "pd.read_csv({name!r})").format(name=dataset.name),
        "sheets": sheets if len(sheets) > 1 else [],
        **info,
    }


def _column_samples(column: dict, preview: dict) -> list[str]:
    """Distinct values seen in the profile (top values, then the preview rows): the offline analyst reads
    them to tell dates stored as text and to know which words of a question are values ("only West")."""
    stats = column.get("stats") or {}
    seen = [str(t.get("value")) for t in stats.get("top") or [] if isinstance(t, dict)]
    names = list(preview.get("columns") or [])
    if column.get("name") in names:
        i = names.index(column.get("name"))
        seen += [str(row[i]) for row in preview.get("rows") or [] if i < len(row) and row[i] is not None]
    return list(dict.fromkeys(seen))[:50]


def system_prompt_render(*, session: AnalysisSession, run: Run, datasets: list, notice: str | None = None) -> str:
    history = [
        {"question": r.question, "answer": (r.answer or r.error or "(no answer)")[:2000]}
        for r in selectors.conversation_for_session(session=session, before_run=run)
    ]
    context = {
        "project_name": session.project.name,
        "datasets": [dataset_prompt_info(d) for d in datasets],
        "history": history,
        "max_tool_calls": settings.AGENT_MAX_TOOL_CALLS,
        "kernel_notice": notice or "",
    }
    # A prompt is plain text: HTML escaping turned quotes in load lines and previews into &#x27; for the model.
    return _ENGINE.get_template("system.txt").render(Context(context, autoescape=False))


# --- the tool -------------------------------------------------------------------------------------


def _result_dict(result: Any) -> dict:
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def result_steps_save(*, deps: AgentDeps, result: dict, code_step: Step | None = None) -> None:
    """Save what one execution produced as steps: output, error, then one step per artifact.

    When the policy refused something the code tried (``result["refusals"]``, caught or not), the code step
    records it as ``data["refusals"]`` and the next step saved carries it too (with ``refused_code_step``):
    pushing that step is what puts the warning on the live page's code step (see _push_step.html)."""
    run = deps.run
    refusals = [str(r) for r in result.get("refusals") or []]
    marks = {}
    if refusals and code_step is not None:
        services.step_refusals_record(step=code_step, refusals=refusals)
        marks = {"refusals": refusals, "refused_code_step": code_step.pk}
    shown = result.get("stdout") or result.get("stderr") or result.get("final_result") is not None
    error = result.get("error")
    if shown or (result.get("display") and not result.get("artifacts")) or (marks and not error):
        step = services.step_create(
            run=run,
            kind=Step.Kind.OUTPUT,
            content=result.get("stdout") or "",
            data={
                "stderr": result.get("stderr") or "",
                "display": None if result.get("artifacts") else result.get("display"),
                "final_result": result.get("final_result"),
                "group_sizes": result.get("group_sizes"),
                "duration": result.get("duration"),
                **marks,
            },
        )
        deps.values.add_output(step=step.ordinal, stdout=step.content, data=step.data)
        marks = {}
    if error:
        services.step_create(
            run=run,
            kind=Step.Kind.ERROR,
            content=f"{error.get('type')}: {error.get('message')}",
            data={
                "traceback": traceback_trimmed(error.get("traceback") or ""),
                "killed": result.get("killed_reason"),
                **marks,
            },
        )
    result["artifacts"], result["artifact_errors"] = artifacts_save(deps=deps, payloads=result.get("artifacts") or [])


def artifacts_save(*, deps: AgentDeps, payloads: list) -> tuple[list[dict], list[str]]:
    """Store each artifact that meets the schema and the run's budget; every other one becomes an error step
    saying why, and those over the per-run limit one summary step. Returns (stored payloads, problems)."""
    stored, problems, over = [], [], []
    for payload in payloads:
        if deps.artifact_budget.full:
            over.append(payload)
            continue
        try:
            prepared = services.artifact_prepare(payload=payload, workspace=deps.workspace, budget=deps.artifact_budget)
        except services.ArtifactRejected as exc:
            problems.append(str(exc))
            services.step_create(run=deps.run, kind=Step.Kind.ERROR, content=str(exc), data={"artifact": "rejected"})
            continue
        services.db_retry(lambda prepared=prepared: artifact_step_save(deps=deps, prepared=prepared))
        stored.append(payload)
    if over:
        message = artifacts_over_limit_message(over, limit=deps.artifact_budget.max_count)
        problems.append(message)
        services.step_create(run=deps.run, kind=Step.Kind.ERROR, content=message, data={"artifact": "over_limit"})
    return stored, problems


def artifacts_over_limit_message(payloads: list, *, limit: int) -> str:
    kinds: dict[str, int] = {}
    names = []
    for payload in payloads:
        kind = payload.get("kind") if isinstance(payload, dict) else None
        kinds[str(kind)] = kinds.get(str(kind), 0) + 1
        if kind == "file" and isinstance(payload.get("name"), str) and len(names) < 5:
            names.append(payload["name"][:80])
    labels = {"file": "files", "plotly": "charts", "image": "images", "table": "tables"}
    counted = ", ".join(f"{n} {labels.get(k, 'other outputs')}" for k, n in sorted(kinds.items()))
    files = f" ({', '.join(names)}{', …' if kinds.get('file', 0) > len(names) else ''})" if names else ""
    return (
        f"This run reached its limit of {limit} stored outputs (SANDBOX_MAX_ARTIFACTS); {len(payloads)} more "
        f"were not stored: {counted}{files}. Make fewer charts, tables or files per question."
    )


def artifact_step_save(*, deps: AgentDeps, prepared: services.PreparedArtifact) -> None:
    """One transaction: the step is published on commit, so the page receives it with its artifact linked.
    (Retried whole by the caller when SQLite is busy: inside a transaction a single statement cannot be.)"""
    with transaction.atomic():
        step = services.step_create(
            run=deps.run, kind=Step.Kind.ARTIFACT, content="", data={"kind": prepared.checked.kind}
        )
        artifact = services.artifact_store(run=deps.run, step=step, prepared=prepared)
        step.content = artifact.title
        step.data = {**step.data, "artifact_id": artifact.pk}
        if artifact.kind == Artifact.Kind.TABLE:
            deps.values.add_table_body(prepared.checked.content, step=step.ordinal, title=artifact.title)
        step.save(update_fields=["content", "data"])


async def _execute(deps: AgentDeps, code: str) -> Any:
    """The kernel call in a thread (not the loop, not an ORM thread: it may take its whole time limit).

    A stop that lands while the kernel is still starting finds nothing to kill, so it is repeated until the
    execution returns."""
    execution = asyncio.ensure_future(asyncio.to_thread(deps.executor.run, code))
    deps.controller.executing = True
    try:
        while True:
            done, _ = await asyncio.wait({execution}, timeout=0.25)
            if done:
                return execution.result()
            if deps.controller.reason is not None:
                with contextlib.suppress(Exception):
                    deps.executor.cancel()
    finally:
        deps.controller.executing = False


async def run_python(ctx: RunContext[AgentDeps], code: str) -> str:
    """Run Python code in the session's persistent sandbox kernel and return its output.

    Args:
        code: Python source to execute. Set `final_result` to the answer's key value(s).
    """
    deps = ctx.deps
    deps.controller.check()
    deps.tool_calls += 1
    if deps.tool_calls > deps.max_tool_calls:
        raise StepBudgetExceeded
    t0 = time.perf_counter()
    # data["execution"]: the how-manieth execution of the run (the running indicator's "step N", no query).
    code_step = await deps.db(
        services.step_create, run=deps.run, kind=Step.Kind.CODE, content=code, data={"execution": deps.tool_calls}
    )
    t1 = time.perf_counter()
    result = _result_dict(await _execute(deps, code))
    t2 = time.perf_counter()
    deps.kernel_lost = result.get("killed_reason") or None
    deps.controller.check()
    await deps.db(result_steps_save, deps=deps, result=result, code_step=code_step)
    t3 = time.perf_counter()
    deps.timings.append({"save_code": t1 - t0, "execute": t2 - t1, "save_result": t3 - t2})
    observation = observation_text(result)
    if deps.notice:
        observation, deps.notice = f"note: {deps.notice}\n{observation}", None
    return observation


# One agent and one tool for every run of the process: building the tool's schema from ``run_python``'s signature
# and docstring (a pydantic model) and the agent cost about half a millisecond of CPU per run, on the loop every run
# of the worker shares. Each run passes its own model, instructions and deps to ``iter``; the agent holds no run state.
RUN_PYTHON = Tool(run_python, takes_ctx=True, name="run_python")
AGENT: Agent[AgentDeps, str] = Agent(deps_type=AgentDeps, tools=[RUN_PYTHON], retries={"tools": 2, "output": 1})


# --- the run ----------------------------------------------------------------------------------------


def _usage_and_cost(agent_run) -> tuple[int, int, Decimal]:
    if agent_run is None:
        return 0, 0, Decimal("0")
    usage = agent_run.usage
    cost = Decimal("0")
    for message in agent_run.all_messages():
        if isinstance(message, ModelResponse) and message.provider_details:
            value = message.provider_details.get("cost")
            if isinstance(value, int | float):
                cost += Decimal(str(value))
    return int(usage.input_tokens or 0), int(usage.output_tokens or 0), cost


def model_error_message(exc: BaseException, attempts: int) -> str:
    if isinstance(exc, ai_exc.ModelHTTPError):
        body = str(getattr(exc, "body", "") or "")[:300]
        return (
            f"The model provider answered HTTP {exc.status_code} for {exc.model_name} "
            f"(after {attempts} attempt{'s' if attempts != 1 else ''}). {body}".strip()
        )
    if isinstance(exc, ai_exc.ModelAPIError):
        return f"The model could not be reached (after {attempts} attempts): {exc}"
    return f"The model returned something unusable: {exc}"


def _session_with_project(session_id: int) -> AnalysisSession:
    return AnalysisSession.objects.select_related("project").get(pk=session_id)


def _prompt_inputs(
    *, run: Run, notice: str | None, session: AnalysisSession | None = None, datasets: list | None = None
) -> tuple[AnalysisSession, list, str]:
    """The session, its datasets and the system prompt: one trip to the database thread (``session``, with its
    project, and ``datasets``: already read by the caller)."""
    if session is None:
        session = _session_with_project(run.session_id)
    if datasets is None:
        datasets = selectors.datasets_for_session(session=session)
    return session, datasets, system_prompt_render(session=session, run=run, datasets=datasets, notice=notice)


async def agent_execute_async(
    *,
    run: Run,
    executor: Executor,
    controller: RunController,
    model: Model | None = None,
    workspace: str | None = None,
    db: DbCall = db_inline,
    notice: str | None = None,
    session: AnalysisSession | None = None,
    datasets: list | None = None,
) -> AgentOutcome:
    """Run the agent for ``run`` in the current event loop. ``notice`` (e.g. "the session's variables were
    cleared: …") is saved as the run's first step and told to the model. ``session`` (with its project) and
    ``datasets`` spare reading them again when the caller has. Never raises for model/tool/budget failures; the
    controller cancels the current task, so callers run this in a task of its own."""
    started = time.perf_counter()
    controller._loop = asyncio.get_running_loop()
    controller._task = asyncio.current_task()
    controller.executor = executor
    if notice:
        await db(services.step_create, run=run, kind=Step.Kind.NOTICE, content=notice)
    session, datasets, prompt = await db(_prompt_inputs, run=run, notice=notice, session=session, datasets=datasets)
    key = model_key_resolve(run.model)
    offline_datasets = [dataset_prompt_info(d) for d in datasets] if key == OFFLINE else None  # what it reads
    base_model = model or model_build(key, datasets=offline_datasets)
    retrying = RetryingModel(
        base_model,
        attempts=settings.AGENT_MODEL_ATTEMPTS,
        base_delay=settings.AGENT_RETRY_DELAY,
    )
    deps = AgentDeps(
        run=run,
        executor=executor,
        controller=controller,
        max_tool_calls=settings.AGENT_MAX_TOOL_CALLS,
        workspace=workspace,
        db=db,
        notice=notice,
    )
    outcome = AgentOutcome(status=Run.Status.FAILED, model=base_model.model_name)
    agent_run = None
    try:
        async with AGENT.iter(
            run.question,
            model=retrying,
            instructions=prompt,
            deps=deps,
            usage_limits=UsageLimits(request_limit=settings.AGENT_MAX_TOOL_CALLS * 2 + 4),
        ) as agent_run:
            async for node in agent_run:
                controller.check()
                if Agent.is_call_tools_node(node):
                    await _thoughts_save(run=run, response=node.model_response, db=db)
        answer = str(agent_run.result.output).strip() if agent_run.result else ""
        step = await db(services.answer_step_create, run=run, answer=answer, values=deps.values)
        outcome.status, outcome.answer = Run.Status.SUCCEEDED, step.content
    except StepBudgetExceeded:
        outcome.error = (
            f"Stopped after {deps.max_tool_calls} code executions without reaching an answer (step budget). "
            "Try a narrower question, or raise AGENT_MAX_TOOL_CALLS."
        )
    except ai_exc.UsageLimitExceeded:
        outcome.error = "Stopped: the model kept going without answering (request budget used up)."
    except (RunStopped, asyncio.CancelledError):
        if controller.reason == "timeout":
            outcome.error = f"Stopped: the run used its whole time budget ({settings.AGENT_RUN_TIMEOUT} s)."
        else:
            outcome.status, outcome.error = Run.Status.CANCELLED, "Stopped by the user."
    except (ai_exc.ModelAPIError, ai_exc.UnexpectedModelBehavior) as exc:
        outcome.error = model_error_message(exc, retrying.retries_done + 1)
    outcome.tokens_in, outcome.tokens_out, outcome.cost = _usage_and_cost(agent_run)
    outcome.tool_calls, outcome.timings = min(deps.tool_calls, deps.max_tool_calls), deps.timings
    outcome.kernel_lost = deps.kernel_lost
    outcome.wall_seconds = time.perf_counter() - started
    return outcome


async def _thoughts_save(*, run: Run, response: ModelResponse, db: DbCall) -> None:
    """Text the model writes next to tool calls is its reasoning; text without tool calls is the answer."""
    if not any(isinstance(p, ToolCallPart) for p in response.parts):
        return
    for part in response.parts:
        if isinstance(part, TextPart) and part.content.strip():
            await db(services.step_create, run=run, kind=Step.Kind.THOUGHT, content=part.content.strip())


def agent_execute(
    *,
    run: Run,
    executor: Executor,
    controller: RunController,
    model: Model | None = None,
    workspace: str | None = None,
) -> AgentOutcome:
    """Run the agent for ``run`` to an outcome from a plain thread. Never raises for model/tool/budget failures."""
    return async_to_sync(agent_execute_async)(
        run=run, executor=executor, controller=controller, model=model, workspace=workspace
    )
