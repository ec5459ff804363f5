"""Which LLMs a session may use, and how each is built.

Choice keys are stored on ``AnalysisSession.model``: ``openrouter:<model id>``, ``local:<model name>`` (the
OpenAI-compatible endpoint at ``LLM_BASE_URL``) or ``offline`` (the built-in analyst). ``""`` means the
deployment's default: OpenRouter's first model, else the local endpoint, else the offline analyst.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from dataclasses import dataclass

from django.conf import settings
from pydantic_ai import exceptions as ai_exc
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

OFFLINE = "offline"
OFFLINE_MODEL_NAME = "offline-analyst"  # the built-in analyst's model name (what a finished run records)
PROVIDER_PREFIXES = ("openrouter:", "local:")


@dataclass(frozen=True)
class ModelChoice:
    key: str
    label: str


def model_choices() -> list[ModelChoice]:
    choices: list[ModelChoice] = []
    if settings.OPENROUTER_API_KEY:
        choices += [ModelChoice(f"openrouter:{m}", f"{m} (OpenRouter)") for m in settings.OPENROUTER_MODELS]
    if settings.LLM_BASE_URL and settings.LLM_MODEL:
        choices.append(ModelChoice(f"local:{settings.LLM_MODEL}", f"{settings.LLM_MODEL} (local endpoint)"))
    choices.append(ModelChoice(OFFLINE, "Built-in offline analyst"))
    return choices


def model_default_key() -> str:
    return model_choices()[0].key


def model_key_resolve(key: str) -> str:
    """The effective choice key for a session's stored model (falls back to the default when unavailable)."""
    keys = {c.key for c in model_choices()}
    return key if key in keys else model_default_key()


def model_label(key: str) -> str:
    for choice in model_choices():
        if choice.key == key:
            return choice.label
    return key or "Default"


def model_name(model: str) -> str:
    """The name of the model a run uses, whether ``model`` is a choice key (a run not finished yet stores its
    session's) or already the provider's model name (a finished run stores what the model reported):
    ``"offline"`` → ``offline-analyst``, ``"local:x"`` / ``"openrouter:x"`` → ``x``, ``""`` → the default's."""
    key = model or model_default_key()
    if key == OFFLINE:
        return OFFLINE_MODEL_NAME
    for prefix in PROVIDER_PREFIXES:
        if key.startswith(prefix):
            return key.removeprefix(prefix)
    return key


# Errors worth another attempt: the provider is busy, broken for a moment, or slow.
RETRYABLE = (
    ai_exc.ModelRateLimitError,
    ai_exc.ModelUnavailableError,
    ai_exc.ModelServerError,
    ai_exc.ModelConnectionError,
    ai_exc.ModelRequestTimeout,
)


def model_error_is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RETRYABLE):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(exc, ai_exc.ModelHTTPError) and (status == 429 or (status or 0) >= 500)


class RetryingModel(WrapperModel):
    """Retries transient model/API failures with exponential backoff and jitter, a bounded number of times."""

    def __init__(self, wrapped: Model, *, attempts: int = 4, base_delay: float = 0.5, max_delay: float = 8.0):
        super().__init__(wrapped)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.retries_done = 0

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.wrapped.request(messages, model_settings, model_request_parameters)
            except Exception as exc:
                if attempt >= self.attempts or not model_error_is_retryable(exc):
                    raise
                self.retries_done += 1
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.75 + random.random() / 2))
        raise AssertionError("unreachable")  # pragma: no cover


_HTTP_CLIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its connection pool


def _http_client():
    """The running event loop's one connection pool to model providers, or None outside a loop (the SDK then
    makes its own). A client of its own per run cost a TLS context (tens of ms of CPU, on the loop every other
    run of the worker shares) and a new connection for every call."""
    from openai import DefaultAsyncHttpxClient

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    client = _HTTP_CLIENTS.get(loop)
    if client is None or client.is_closed:
        client = _HTTP_CLIENTS[loop] = DefaultAsyncHttpxClient()
    return client


_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {configuration: (pool, model)}


def model_build(key: str, *, datasets: list[dict] | None = None) -> Model:
    """The pydantic-ai model for a choice key. The SDK's own retries are off: ``RetryingModel`` owns them.

    Inside an event loop a provider's model is built once per configuration and reused by every run on that loop
    (it holds no per-run state): a new SDK client per run cost a platform probe in a thread and the client's
    setup on the loop that every run of the worker shares. The offline analyst is built per run (it reads the
    run's datasets)."""
    key = model_key_resolve(key)
    if key == OFFLINE:
        from analysis.agent.offline import offline_model

        return offline_model(datasets=datasets or [])
    timeout = float(getattr(settings, "LLM_REQUEST_TIMEOUT", 120))
    if key.startswith("openrouter:"):
        config = (key, settings.OPENROUTER_API_KEY, timeout)
    else:
        config = (key, settings.LLM_BASE_URL, settings.LLM_API_KEY, timeout)
    http_client = _http_client()
    if http_client is None:
        return _provider_model(key, timeout=timeout, http_client=None)
    models = _MODELS.setdefault(asyncio.get_running_loop(), {})
    pool, model = models.get(config, (None, None))
    if model is None or pool is not http_client:  # the loop's pool was closed and replaced
        model = _provider_model(key, timeout=timeout, http_client=http_client)
        models[config] = (http_client, model)
    return model


def _provider_model(key: str, *, timeout: float, http_client) -> Model:
    from openai import AsyncOpenAI

    if key.startswith("openrouter:"):
        from pydantic_ai.models.openrouter import OpenRouterModel
        from pydantic_ai.providers.openrouter import OpenRouterProvider

        client = AsyncOpenAI(
            base_url="https://openrouter.ai/api/v1",
            api_key=settings.OPENROUTER_API_KEY,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )
        return OpenRouterModel(key.removeprefix("openrouter:"), provider=OpenRouterProvider(openai_client=client))
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY or "not-needed",
        max_retries=0,
        timeout=timeout,
        http_client=http_client,
    )
    return OpenAIChatModel(key.removeprefix("local:"), provider=OpenAIProvider(openai_client=client))
