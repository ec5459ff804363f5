"""503 instead of 500 while a backing service (the database, Redis) is unreachable.

Django turns any exception into a 500; for a database that is restarting or a Redis that blinked, the honest
answer is 503 with ``Retry-After`` and a clear message: an HTML page for pages, ``{"detail": ...}`` for /api/.
Nothing is cached or kept between requests, so the site recovers by itself as soon as the service is back
(each request opens its own connection; Django drops a connection that failed).

The middleware catches what views raise; ``codingagent.views.server_error`` (the 500 handler) catches the
rest (e.g. the session middleware saving after the view), so both paths answer the same. Websockets get
``WebsocketUnavailableMiddleware`` (outermost in asgi.py): the handshake is refused without a traceback, which
the page's websocket extension answers by reconnecting with a backoff.
"""

from __future__ import annotations

import logging
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGES = {
    "database": "The database is unavailable right now, so this could not be done. Try again in a few seconds.",
    "redis": "A service this site depends on (Redis) is unavailable right now. Try again in a few seconds.",
}
_LOG_EVERY_SECONDS = 30.0
_last_logged: dict[str, float] = {}


def unavailable_service(exc: BaseException | None) -> str | None:
    """ "database" or "redis" when ``exc`` (or what caused it) means that service cannot be reached."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OperationalError | InterfaceError):
            return "database"
        module = type(exc).__module__
        if module.startswith("redis") and type(exc).__name__ in {"ConnectionError", "TimeoutError", "BusyLoadingError"}:
            return "redis"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _log_outage(service: str, what: str, exc: BaseException) -> None:
    now = time.monotonic()
    if now - _last_logged.get(service, 0.0) >= _LOG_EVERY_SECONDS:  # once per outage, not once per request
        _last_logged[service] = now
        logger.error("%s unavailable, answering 503 (%s): %s", service, what, exc)


def unavailable_response(request: HttpRequest, *, service: str, exc: BaseException) -> HttpResponse:
    _log_outage(service, f"{request.method} {request.path}", exc)
    detail = MESSAGES[service]
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse({"detail": detail}, status=503)
    else:
        context = {"detail": detail, "service": service, "retry_after": RETRY_AFTER_SECONDS}
        response = HttpResponse(render_to_string("503.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = unavailable_service(exception)
        if service is None:
            return None
        return unavailable_response(request, service=service, exc=exception)


class WebsocketUnavailableMiddleware:
    """ASGI: a websocket whose setup (session, user, access check, group) hits an outage is refused quietly."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        accepted = False

        async def tracking_send(message: dict) -> None:
            nonlocal accepted
            accepted = accepted or message["type"] == "websocket.accept"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            service = unavailable_service(exc)
            if service is None:
                raise
            _log_outage(service, f"websocket {scope.get('path', '')}", exc)
            if accepted:
                raise  # the server closes with 1011, which the page also answers by reconnecting
            # Refuse the handshake: the browser sees close code 1006, which the page's ws extension retries with
            # a backoff. (1013 "try again later" would say it better, but daphne may not send it.)
            await send({"type": "websocket.close"})
