"""Login throttling shared by every login door (the page, the admin, the API).

Two limits, both counted in the cache (Redis in production, shared by every web process):
- per client address: every attempt counts (``LOGIN_THROTTLE``), whatever email it names;
- per account: failed attempts count (``LOGIN_ACCOUNT_THROTTLE``), from whatever address. Only failures lock an
  account, and wrong passwords from elsewhere do not lock its owner out: from an address the account logged in
  from in the last ``USUAL_ADDRESS_DAYS`` days (the audit log says), only the failures from that address count.
The client address is the one our servers saw (``codingagent.lib.http.client_address``): a client cannot
rotate its way past the limit with made-up ``X-Forwarded-For`` headers.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from accounts.models import AuditEvent
from accounts.selectors import login_address_usual
from accounts.services import audit_record
from codingagent.lib.http import client_address, client_ip

USUAL_ADDRESS_DAYS = 90

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*")


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/min"``, ``"10/15min"``, ``"100/day"`` → (allowed count, window in seconds)."""
    match = _RATE.fullmatch(rate.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"{rate!r} is not a rate like 10/min, 10/15min or 100/day")
    return int(match.group(1)), int(match.group(2) or 1) * _UNITS[match.group(3)]


def _email_key(email: str) -> str:
    return hashlib.sha256(str(email).strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Window:
    key: str
    limit: int
    wait: int


def _window(kind: str, ident: str, rate: str) -> _Window:
    limit, seconds = parse_rate(rate)
    now = time.time()
    return _Window(
        key=f"login:{kind}:{ident}:{int(now // seconds)}", limit=limit, wait=int(seconds - now % seconds) + 1
    )


def _count(window: _Window) -> int:
    cache.add(window.key, 0, timeout=window.wait + 1)
    try:
        return cache.incr(window.key)
    except ValueError:  # expired between add and incr
        cache.set(window.key, 1, timeout=window.wait + 1)
        return 1


@dataclass(frozen=True)
class LoginRefusal:
    wait: int
    message: str


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def login_attempt_check(request: HttpRequest, *, email: str) -> LoginRefusal | None:
    """Count one login attempt; a refusal (with the wait) when the address or the account is over its limit.

    Checked before the password, so a refused attempt learns nothing about it.
    """
    address = _window("address", client_address(request), settings.LOGIN_THROTTLE)
    attempts = _count(address)
    if attempts > address.limit:
        if attempts == address.limit + 1:
            audit_record(event=AuditEvent.Event.LOCKOUT, email=email, request=request,
                         target=f"address {client_address(request)}",
                         detail={"scope": "address", "seconds": address.wait})  # fmt: skip
        return LoginRefusal(
            wait=address.wait,
            message=f"Too many login attempts from your address. Please wait {_wait_text(address.wait)} and try again.",
        )
    account = _account_window(email)
    if (cache.get(account.key) or 0) < account.limit:
        return None
    if login_address_usual(email=email, ip=client_ip(request), days=USUAL_ADDRESS_DAYS):
        # The owner's own address: locked only by the failures made from it.
        account = _account_window(email, request=request)
        if (cache.get(account.key) or 0) < account.limit:
            return None
    return LoginRefusal(
        wait=account.wait,
        message=(
            "Too many login attempts for this account: it is locked for "
            f"{_wait_text(account.wait)}. Try again later, or reset your password (Forgot your password?)."
        ),
    )


def login_failure_record(request: HttpRequest | None, *, email: str) -> None:
    """Count a wrong password against the account (and against the account from this address); the attempt
    that reaches the account's limit is a lockout event."""
    account = _account_window(email)
    if _count(account) == account.limit:
        audit_record(event=AuditEvent.Event.LOCKOUT, email=email, request=request, target=f"account {email}",
                     detail={"scope": "account", "seconds": account.wait})  # fmt: skip
    if request is not None:
        _count(_account_window(email, request=request))


def login_failures_forget(*, email: str) -> None:
    """Unlock the account ``email`` (its failures from anywhere): its owner just reset the password by the
    emailed link, which proves more than a password would."""
    cache.delete(_account_window(email).key)


def _account_window(email: str, *, request: HttpRequest | None = None) -> _Window:
    """The failures of the account ``email``; with ``request``, only those from the request's address."""
    ident = _email_key(email) if request is None else f"{_email_key(email)}:{client_address(request)}"
    return _window("account", ident, settings.LOGIN_ACCOUNT_THROTTLE)


def password_reset_attempt_check(request: HttpRequest, *, email: str) -> LoginRefusal | None:
    """Count one password-reset request; a refusal when the address or the email is over its limit.

    The login rates, in counters of their own: every request counts against the client address
    (``LOGIN_THROTTLE``) and against the email asked for (``LOGIN_ACCOUNT_THROTTLE``, so nobody can flood an
    inbox), whether or not the email is registered, so a refusal says nothing about the address either.
    """
    address = _window("reset-address", client_address(request), settings.LOGIN_THROTTLE)
    account = _window("reset-account", _email_key(email), settings.LOGIN_ACCOUNT_THROTTLE)
    for window, scope in ((address, "address"), (account, "account")):
        attempts = _count(window)
        if attempts <= window.limit:
            continue
        if attempts == window.limit + 1:
            detail = {"scope": f"reset-{scope}", "seconds": window.wait}
            audit_record(event=AuditEvent.Event.LOCKOUT, email=email, request=request,
                         target=f"password reset {scope}", detail=detail)  # fmt: skip
        return LoginRefusal(
            wait=window.wait,
            message=f"Too many password reset requests. Please wait {_wait_text(window.wait)} and try again.",
        )
    return None
