"""State changes for users and their API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User

USER_UPDATABLE_FIELDS = ("full_name", "role", "is_active")


@transaction.atomic
def user_create(
    *, email: str, password: str, full_name: str = "", role: str = User.Role.USER, is_active: bool = True
) -> User:
    """Create a user after checking the email is free and the password passes the validators."""
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "A user with this email already exists."})
    candidate = User(email=email, full_name=full_name, role=role, is_active=is_active)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    return User.objects.create_user(email, password, full_name=full_name, role=role, is_active=is_active)


@transaction.atomic
def user_update(*, user: User, data: dict[str, Any]) -> User:
    """Change a user's name, role, active flag and/or password (only the keys present in ``data``)."""
    for field in USER_UPDATABLE_FIELDS:
        if field in data:
            setattr(user, field, data[field])
    if data.get("password"):
        try:
            validate_password(data["password"], user=user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
        user.set_password(data["password"])
    user.full_clean(exclude=["password"])
    user.save()
    return user


def auth_tokens_issue(*, user: User) -> dict[str, str]:
    """A fresh refresh/access pair for ``user`` (the caller has authenticated them)."""
    refresh = RefreshToken.for_user(user)
    update_last_login(None, user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def auth_refresh_revoke(*, refresh: str) -> None:
    """Blacklist a refresh token (logout). Raises ``TokenError`` when it is invalid or already revoked."""
    token = RefreshToken(refresh)
    token.check_blacklist()
    token.blacklist()
