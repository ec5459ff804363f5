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


def _workers(request: HttpRequest, status: dict[str, str]) -> dict | None:
    """The run workers' report (None while the database is down); fails only when runs wait for nobody."""
    if status["database"] != "ok":
        status["workers"] = "unknown: the database is unavailable"
        return None
    from analysis import selectors  # (no app import at module level: this module serves the URLconf root)

    try:
        report = selectors.run_workers_report(with_processes=_is_staff(request))
    except Exception as exc:  # reported by name, never raised
        status["workers"] = f"error: {type(exc).__name__}: {exc}"[:300]
        return None
    if report["runs_queued"] and not report["alive"]:
        status["workers"] = (
            f"error: {report['runs_queued']} run(s) queued and no run worker is alive "
            f"(the oldest has waited {report['oldest_queued_seconds']:.0f} s)"
        )
    else:
        status["workers"] = "ok"
    return report


def _is_staff(request: HttpRequest) -> bool:
    try:
        return bool(request.user.is_staff)
    except Exception:  # no session store reachable: the public report is enough
        return False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The database, channel layer and storage, then the run workers: alive by heartbeat, the queue, kernels.

    503 when a part fails, or when runs are queued and no worker is alive to take them. Staff also see each
    worker process.
    """
    status: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            status[name] = "ok"
        except Exception as exc:  # any failure is reported by name, never raised
            status[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    workers = _workers(request, status)
    failing = [name for name, value in status.items() if value.startswith("error")]
    body = {"status": "ok" if not failing else "fail", "checks": status, "failing": failing, "workers": workers}
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
