"""State changes for users and their API tokens."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import AuditEvent, RevokedTokenFamily, User
from codingagent.lib.http import client_ip

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
def user_update(
    *, user: User, data: dict[str, Any], actor: User | None = None, request: HttpRequest | None = None
) -> User:
    """Change a user's name, role, active flag and/or password (only the keys present in ``data``).

    A new password ends every API token of the user (their claim holds the old password's hash) and every
    logged-in browser session (Django checks the session's password hash on each request); the role change
    and the reset are audited with ``actor`` (the administrator, or the user for a reset by emailed link)
    and ``request``'s address.
    """
    old_role = user.role
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
    if user.role != old_role:
        audit_record(event=AuditEvent.Event.ROLE_CHANGED, user=actor, request=request, target=f"user {user.email}",
                     detail={"from": old_role, "to": user.role})  # fmt: skip
    if data.get("password"):
        audit_record(event=AuditEvent.Event.PASSWORD_RESET, user=actor, request=request, target=f"user {user.email}")
    return user


def signup_request(*, email: str, password: str, full_name: str, confirm_url: str) -> None:
    """Start a sign-up without telling the visitor whether ``email`` is registered.

    A new address gets an inactive account and a confirmation link; an address with an active account gets
    a note that someone tried (with the login link); an unconfirmed one gets a fresh link. Raises
    ``ValidationError`` only for a password the validators refuse (the same answer for every address).
    """
    email = User.objects.normalize_email(email).lower()
    try:
        validate_password(password, user=User(email=email, full_name=full_name))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = user_create(email=email, password=password, full_name=full_name, is_active=False)
    if user.is_active:
        body = (
            "Someone (maybe you) tried to create a CodingAgent account with this address, which already has one.\n"
            f"Log in at {confirm_url.split('/accounts/')[0]}/accounts/login/ . If it was not you, ignore this email."
        )
    else:
        link = f"{confirm_url}{urlsafe_base64_encode(force_bytes(user.pk))}/{default_token_generator.make_token(user)}/"
        body = f"Welcome to CodingAgent. Open this link to confirm your address and log in:\n{link}\n"
    transaction.on_commit(
        lambda: send_mail("Your CodingAgent sign-up", body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=True)
    )


@transaction.atomic
def signup_confirm(*, uidb64: str, token: str) -> User | None:
    """Activate the account of a valid, unused confirmation link; None for any other link."""
    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    user = User.objects.select_for_update().filter(pk=pk, is_active=False).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    user.is_active = True
    user.save(update_fields=["is_active"])
    return user


def user_theme_set(*, user: User, theme: str) -> User:
    if theme not in User.Theme.values:
        raise ValidationError({"theme": f"Choose one of: {', '.join(User.Theme.values)}."})
    user.theme = theme
    user.save(update_fields=["theme"])
    return user


def auth_tokens_issue(*, user: User) -> dict[str, str]:
    """A fresh refresh/access pair for ``user`` (the caller has authenticated them).

    The pair starts a token family (claim ``sid``, copied into every access token and kept by rotation),
    so a logout can end the family's access tokens too, not only the refresh token.
    """
    refresh = RefreshToken.for_user(user)
    refresh["sid"] = uuid.uuid4().hex
    update_last_login(None, user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


@transaction.atomic
def auth_refresh_revoke(*, refresh: str) -> User | None:
    """Logout: blacklist a refresh token and end its family's access tokens.

    Raises ``TokenError`` when the token is invalid or already revoked; returns the token's user. Also forgets
    the families revoked longer ago than the refresh lifetime: the refresh endpoint rotates no token of a
    revoked family, so every token of theirs has expired by then.
    """
    token = RefreshToken(refresh)
    token.check_blacklist()
    token.blacklist()
    if token.get("sid"):
        RevokedTokenFamily.objects.get_or_create(sid=token["sid"])
    lifetime = max(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"], settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"])
    RevokedTokenFamily.objects.filter(revoked_at__lt=timezone.now() - lifetime).delete()
    return User.objects.filter(pk=token.get("user_id")).first()


def auth_family_revoked(*, sid: str) -> bool:
    return RevokedTokenFamily.objects.filter(sid=sid).exists()


def audit_record(
    *,
    event: str,
    user: User | None = None,
    email: str = "",
    request: HttpRequest | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one security event (see ``AuditEvent.Event``). ``user`` is who acted (None: anonymous or the
    system); ``email`` names the account tried when there is no user (failed logins)."""
    actor = user if user is not None and user.is_authenticated else None
    return AuditEvent.objects.create(
        event=event,
        actor=actor,
        actor_email=(actor.email if actor else str(email or "").strip().lower())[:254],
        target=target[:300],
        ip=client_ip(request) if request is not None else None,
        detail=detail or {},
    )
