"""Login throttling shared by the login page and the login API (per client IP and email)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class LoginRateThrottle(SimpleRateThrottle):
    """Counts every login attempt for one (IP, email) pair; the rate is ``settings.LOGIN_THROTTLE``.

    Keyed on the pair so a guesser cannot lock out a user from other addresses, and one address
    cannot spray many passwords at one account. The cache is Redis in production (shared by all
    web processes) and LocMem elsewhere.
    """

    scope = "login"

    def get_rate(self) -> str:
        # Read at call time (not import time) so settings overrides apply.
        return settings.LOGIN_THROTTLE

    def get_cache_key(self, request: Request | HttpRequest, view) -> str:
        if isinstance(request, Request):
            email = request.data.get("email", "") if hasattr(request.data, "get") else ""
        else:
            email = request.POST.get("username", "")
        digest = hashlib.sha256(str(email).strip().lower().encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}:{digest}"}


def login_attempt_allowed(request: HttpRequest) -> tuple[bool, int]:
    """Record one page login attempt; returns (allowed, seconds to wait when refused)."""
    throttle = LoginRateThrottle()
    if throttle.allow_request(request, None):
        return True, 0
    return False, int(throttle.wait() or 1)
