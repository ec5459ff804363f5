"""Audit of Django's own authentication events (decoupled audit is what signals are for here)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.models import AuditEvent
from accounts.services import audit_record
from accounts.throttling import login_failure_record


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs) -> None:
    audit_record(event=AuditEvent.Event.LOGIN, user=user, request=request, detail={"via": "page"})


@receiver(user_logged_out)
def _audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(event=AuditEvent.Event.LOGOUT, user=user, request=request, detail={"via": "page"})


@receiver(user_login_failed)
def _audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # authenticate() sends this for every door (page, admin, API); credentials arrive with the password masked.
    email = str(credentials.get("username") or credentials.get("email") or "")
    login_failure_record(request, email=email)
    audit_record(event=AuditEvent.Event.LOGIN_FAILED, email=email, request=request)
