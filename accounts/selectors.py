"""Reads of users."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User


def user_list() -> QuerySet[User]:
    """Every user, newest first (the admin-only users API)."""
    return User.objects.order_by("-date_joined", "-pk")
