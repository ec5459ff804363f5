"""Login throttling shared by every login door (the page, the admin, the API).

Two limits, both counted in the cache (Redis in production, shared by every web process):
- per client address: every attempt counts (``LOGIN_THROTTLE``), whatever email it names;
- per account: failed attempts count (``LOGIN_ACCOUNT_THROTTLE``), from whatever address.
The client address is the one the server sees (``REMOTE_ADDR``); ``X-Forwarded-For`` is read only when
``TRUSTED_PROXY_COUNT`` says that many proxies of ours append to it, and then only the entry our
outermost proxy wrote: a client cannot rotate its way past the limit with made-up headers.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*")


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/min"``, ``"10/15min"``, ``"100/day"`` → (allowed count, window in seconds)."""
    match = _RATE.fullmatch(rate.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"{rate!r} is not a rate like 10/min, 10/15min or 100/day")
    return int(match.group(1)), int(match.group(2) or 1) * _UNITS[match.group(3)]


def client_address(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if proxies and forwarded:
        # Each of our proxies appends the address it received from; the client controls only the left part.
        return forwarded[-min(proxies, len(forwarded))]
    return remote


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
    from accounts.services import audit_record  # services import this module

    address = _window("address", client_address(request), settings.LOGIN_THROTTLE)
    attempts = _count(address)
    if attempts > address.limit:
        if attempts == address.limit + 1:
            audit_record(event="lockout", email=email, request=request, target=f"address {client_address(request)}",
                         detail={"scope": "address", "seconds": address.wait})  # fmt: skip
        return LoginRefusal(
            wait=address.wait,
            message=f"Too many login attempts from your address. Please wait {_wait_text(address.wait)} and try again.",
        )
    account = _window("account", _email_key(email), settings.LOGIN_ACCOUNT_THROTTLE)
    if (cache.get(account.key) or 0) >= account.limit:
        return LoginRefusal(
            wait=account.wait,
            message=(
                "Too many login attempts for this account: it is locked for "
                f"{_wait_text(account.wait)}. Try again later, or ask an administrator to reset the password."
            ),
        )
    return None


def login_failure_record(request: HttpRequest | None, *, email: str) -> None:
    """Count a wrong password against the account; the attempt that reaches the limit is a lockout event."""
    from accounts.services import audit_record

    account = _window("account", _email_key(email), settings.LOGIN_ACCOUNT_THROTTLE)
    if _count(account) == account.limit:
        audit_record(event="lockout", email=email, request=request, target=f"account {email}",
                     detail={"scope": "account", "seconds": account.wait})  # fmt: skip
