"""The offline analyst as a pydantic-ai ``FunctionModel``: plan, run the code through ``run_python``, answer."""

from __future__ import annotations

import json
import re

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from analysis.agent.models import OFFLINE_MODEL_NAME as MODEL_NAME
from analysis.agent.offline.conversation import Resolved, conversation_resolve
from analysis.agent.offline.datasets import DatasetInfo


def _last_tool_return(messages: list[ModelMessage]) -> ToolReturnPart | None:
    last = messages[-1] if messages else None
    if isinstance(last, ModelRequest):
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return part
    return None


def _final_result_from(observation: str):
    m = re.search(r"^final_result \(json\): (.*)$", observation, flags=re.MULTILINE)
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def _text(content: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(content)])


def _preface(resolved: Resolved) -> str:
    parts = []
    if resolved.builds_on:
        parts.append(f"Building on “{resolved.builds_on}”.")
    if resolved.dataset_why:
        parts.append(f"Using {resolved.dataset_why}.")
    return " ".join(parts) + (" " if parts else "")


def answer_from(resolved: Resolved, observation: str) -> str:
    if observation.startswith("status: error"):
        err = re.search(r"^error: (?:\w+: )?(.*)$", observation, flags=re.MULTILINE)
        return f"I could not compute that: {err.group(1) if err else 'the code failed'}."
    result = _final_result_from(observation)
    if result is None:
        return "The code ran but produced no result to report."
    assert resolved.intent is not None and resolved.request is not None
    return _preface(resolved) + resolved.intent.answer(resolved.request, result)


def offline_model(*, datasets: list[dict]) -> FunctionModel:
    infos = [table for d in datasets for table in DatasetInfo.all_from_prompt_info(d)]

    def offline_analyst(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        resolved = conversation_resolve(messages, infos)
        if resolved.intent is None:
            return _text(resolved.refusal)
        tool_return = _last_tool_return(messages)
        if tool_return is None:
            plan = resolved.intent.plan(resolved.request)
            return ModelResponse(parts=[TextPart(plan.thought), ToolCallPart("run_python", {"code": plan.code})])
        return _text(answer_from(resolved, str(tool_return.content)))

    return FunctionModel(offline_analyst, model_name=MODEL_NAME)
