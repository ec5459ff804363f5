"""Project-level views that belong to no app."""

from __future__ import annotations

import sys
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from codingagent.middleware import unavailable_response, unavailable_service


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)(channel, {"type": "health.ping"})
    async_to_sync(layer.receive)(channel)


def _check_storage() -> None:
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as fh:
            fh.read()
    finally:
        default_storage.delete(name)


CHECKS = {"database": _check_database, "channel_layer": _check_channel_layer, "storage": _check_storage}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    status: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            status[name] = "ok"
        except Exception as exc:  # any failure is reported by name, never raised
            status[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    failing = [name for name, value in status.items() if value != "ok"]
    body = {"status": "ok" if not failing else "fail", "checks": status, "failing": failing}
    return JsonResponse(body, status=503 if failing else 200)


@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    # Resolved per request: the hashed name exists only once collectstatic has run.
    return HttpResponseRedirect(static("img/favicon.svg"))


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler: a service outage raised outside a view (e.g. saving the session) is a 503 too."""
    exc = sys.exc_info()[1]
    service = unavailable_service(exc)
    if service is not None:
        return unavailable_response(request, service=service, exc=exc)
    return defaults.server_error(request)
