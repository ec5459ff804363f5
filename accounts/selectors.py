"""Reads of users."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, User


def user_list() -> QuerySet[User]:
    """Every user, newest first (the admin-only users API)."""
    return User.objects.order_by("-date_joined", "-pk")


def login_address_usual(*, email: str, ip: str | None, days: int) -> bool:
    """Whether the account ``email`` logged in from ``ip`` (as the server saw it) in the last ``days`` days.

    Read from the audit log's login events: the addresses an account really uses, which no failed attempt of
    anyone else's can add to.
    """
    if not ip or not email:
        return False
    return AuditEvent.objects.filter(
        event=AuditEvent.Event.LOGIN,
        actor__email__iexact=email.strip(),
        ip=ip,
        created_at__gte=timezone.now() - timedelta(days=days),
    ).exists()
