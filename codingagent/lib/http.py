"""HTTP helpers shared by the apps' views and API views (no domain logic here)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django_htmx.middleware import HtmxDetails
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

if TYPE_CHECKING:
    from accounts.models import User

M = TypeVar("M", bound=Model)


class HtmxRequest(HttpRequest):
    """A request that went through django-htmx's middleware (typing only)."""

    htmx: HtmxDetails


class AuthedHtmxRequest(HtmxRequest):
    """A request from a logged-in user (views decorated with ``login_required``)."""

    user: User  # type: ignore[assignment]


def client_address(request: HttpRequest) -> str:
    """The client's address as our own servers saw it (login throttle keys, the audit log).

    ``REMOTE_ADDR``, unless ``TRUSTED_PROXY_COUNT`` proxies of ours append to ``X-Forwarded-For``: then the entry
    the outermost of them wrote. The client controls only the left part, so it cannot pick its own address.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return remote


def client_ip(request: HttpRequest) -> str | None:
    """``client_address`` when it is a valid IP address (what an IP field can store), else None."""
    try:
        return str(ipaddress.ip_address(client_address(request)))
    except ValueError:
        return None


def get_object_or_403(allowed: QuerySet[M], *, visible: QuerySet[M], **lookup: Any) -> M:
    """The object when ``allowed`` holds it.

    Otherwise 403 when the user can at least see it (``visible``), and 404 when they cannot, so an
    outsider never learns that the object exists. Both querysets come from the permission selectors.
    """
    try:
        return allowed.get(**lookup)
    except allowed.model.DoesNotExist:
        if visible.filter(**lookup).exists():
            raise PermissionDenied("You do not have permission to do this.") from None
        raise Http404(f"No {allowed.model._meta.verbose_name} matches the given query.") from None


@contextmanager
def api_validation_errors() -> Iterator[None]:
    """Turn a service's Django ``ValidationError`` into DRF's 400 answer with the same messages."""
    try:
        yield
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        raise DrfValidationError(detail) from exc


def paginated_response(
    *, queryset: QuerySet, serializer_class: type[serializers.Serializer], request: Request, view
) -> Response:
    """A page of ``queryset`` in DRF's default page-number envelope (count, next, previous, results)."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context={"request": request}).data)


_paginated_serializers: dict[type[serializers.Serializer], type[serializers.Serializer]] = {}


def paginated_serializer(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """A serializer describing one page of ``serializer_class`` (for the OpenAPI schema only)."""
    if serializer_class not in _paginated_serializers:
        name = serializer_class.__name__.removesuffix("Serializer").removesuffix("Output")
        _paginated_serializers[serializer_class] = type(
            f"Paginated{name}List",
            (serializers.Serializer,),
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": serializer_class(many=True),
            },
        )
    return _paginated_serializers[serializer_class]
