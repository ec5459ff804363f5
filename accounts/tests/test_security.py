"""Production web security of the account doors: throttling that forwarded headers cannot bypass, lockout
per account, tokens that end when they should, and the audit log of security events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import AuditEvent, RevokedTokenFamily, User
from conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN_PAGE = reverse("accounts:login")
LOGIN_API = reverse("api-v1:auth-login")
REFRESH = reverse("api-v1:auth-refresh")
LOGOUT = reverse("api-v1:auth-logout")
ME = reverse("api-v1:auth-me")


def _page_login(client, email="alice@example.com", password="wrong-password", **extra):
    return client.post(LOGIN_PAGE, {"username": email, "password": password}, **extra)


def _api_login(client, email="alice@example.com", password="wrong-password", **extra):
    return client.post(LOGIN_API, {"email": email, "password": password}, format="json", **extra)


def _tokens(api_client) -> dict:
    response = _api_login(api_client, password=PASSWORD)
    assert response.status_code == 200
    return response.json()


def _me(token: str):
    return APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


def _refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


# --- throttling: per client address as the server sees it, and per account ------------------------------


def test_fifteen_wrong_page_logins_with_rotating_forwarded_for_are_throttled(client, alice):
    statuses = [
        _page_login(client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(15)
    ]  # fmt: skip

    assert statuses == [200] * 10 + [429] * 5
    assert "_auth_user_id" not in client.session


def test_fifteen_wrong_api_logins_with_rotating_forwarded_for_are_throttled(api_client, alice):
    responses = [_api_login(api_client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(15)]

    assert [r.status_code for r in responses] == [401] * 10 + [429] * 5
    assert "Too many login attempts from your address" in responses[-1].json()["detail"]
    assert int(responses[-1]["Retry-After"]) > 0


def test_behind_a_configured_proxy_only_the_entry_our_proxy_wrote_counts(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_THROTTLE = "3/min"
    spoofed = [
        _page_login(client, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 192.0.2.7").status_code for n in range(4)
    ]  # fmt: skip

    another_client = _page_login(client, HTTP_X_FORWARDED_FOR="10.0.0.1, 192.0.2.8")

    assert spoofed == [200, 200, 200, 429]
    assert another_client.status_code == 200


def test_wrong_passwords_from_many_addresses_lock_the_account_with_a_message(client, alice, settings):
    settings.LOGIN_ACCOUNT_THROTTLE = "5/15min"
    wrong = [_page_login(client, REMOTE_ADDR=f"192.0.2.{n}").status_code for n in range(5)]

    locked = _page_login(client, password=PASSWORD, REMOTE_ADDR="192.0.2.99")
    other_account = _page_login(client, email="bob@example.com", REMOTE_ADDR="192.0.2.98")

    assert wrong == [200] * 5
    assert locked.status_code == 429
    assert "Too many login attempts for this account: it is locked for" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert other_account.status_code == 200  # bob is not locked (wrong password for a missing user: form again)
    lockout = AuditEvent.objects.get(event=AuditEvent.Event.LOCKOUT)
    assert lockout.actor_email == "alice@example.com" and lockout.detail["scope"] == "account"


def test_others_wrong_passwords_do_not_lock_the_owner_out_from_their_usual_address(client, alice, settings):
    settings.LOGIN_ACCOUNT_THROTTLE = "5/15min"
    _page_login(client, password=PASSWORD, REMOTE_ADDR="192.0.2.10")  # alice's usual address
    client.logout()
    for n in range(5):
        _page_login(client, REMOTE_ADDR=f"198.51.100.{n}")  # someone else, elsewhere, trying to lock her out

    elsewhere = _page_login(client, password=PASSWORD, REMOTE_ADDR="198.51.100.99")
    at_home = _page_login(client, password=PASSWORD, REMOTE_ADDR="192.0.2.10")

    assert elsewhere.status_code == 429
    assert at_home.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_wrong_passwords_from_the_usual_address_still_lock_the_account_there(client, alice, settings):
    settings.LOGIN_ACCOUNT_THROTTLE = "5/15min"
    _page_login(client, password=PASSWORD, REMOTE_ADDR="192.0.2.10")
    client.logout()
    for _ in range(5):
        _page_login(client, REMOTE_ADDR="192.0.2.10")  # a guesser behind the same address

    response = _page_login(client, password=PASSWORD, REMOTE_ADDR="192.0.2.10")

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_api_shares_the_account_lock_of_the_page(client, api_client, alice, settings):
    settings.LOGIN_ACCOUNT_THROTTLE = "3/15min"
    for n in range(3):
        _page_login(client, REMOTE_ADDR=f"192.0.2.{n}")

    response = _api_login(api_client, password=PASSWORD, REMOTE_ADDR="192.0.2.50")

    assert response.status_code == 429
    assert "locked" in response.json()["detail"]


# --- tokens end when they should ---------------------------------------------------------------------


def test_a_password_change_on_the_page_ends_existing_access_and_refresh_tokens(client, api_client, alice):
    tokens = _tokens(api_client)
    client.force_login(alice)

    client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "brand-new-secret-77", "new_password2": "brand-new-secret-77"},
    )

    assert _me(tokens["access"]).status_code == 401
    assert _refresh(tokens["refresh"]).status_code == 401
    assert _api_login(api_client, password="brand-new-secret-77").status_code == 200
    assert AuditEvent.objects.filter(event=AuditEvent.Event.PASSWORD_CHANGED, actor=alice).count() == 1


def test_a_password_reset_by_an_admin_through_the_api_ends_the_users_tokens(api_client, api_as, alice, admin_user):
    tokens = _tokens(api_client)

    response = api_as(admin_user).patch(
        reverse("api-v1:user-detail", args=[alice.pk]), {"password": "reset-by-admin-42"}, format="json"
    )

    assert response.status_code == 200
    assert _me(tokens["access"]).status_code == 401
    assert _refresh(tokens["refresh"]).status_code == 401
    reset = AuditEvent.objects.get(event=AuditEvent.Event.PASSWORD_RESET)
    assert (reset.actor, reset.target) == (admin_user, "user alice@example.com")


def test_a_password_reset_in_the_django_admin_ends_the_users_tokens(client, api_client, alice, admin_user):
    tokens = _tokens(api_client)
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[alice.pk]),
        {"password1": "reset-in-admin-42", "password2": "reset-in-admin-42"},
    )

    assert response.status_code == 302
    assert _me(tokens["access"]).status_code == 401
    assert _refresh(tokens["refresh"]).status_code == 401
    assert AuditEvent.objects.filter(event=AuditEvent.Event.PASSWORD_RESET, actor=admin_user).count() == 1


def test_a_logout_ends_the_access_token_and_the_refresh_token(api_client, alice):
    tokens = _tokens(api_client)
    assert _me(tokens["access"]).status_code == 200

    response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert _me(tokens["access"]).status_code == 401
    assert _refresh(tokens["refresh"]).status_code == 401


def test_a_logout_also_ends_access_tokens_from_rotated_refresh_tokens_but_not_other_logins(api_client, alice):
    first = _tokens(api_client)
    rotated = _refresh(first["refresh"]).json()
    other_login = _tokens(api_client)

    api_client.post(LOGOUT, {"refresh": rotated["refresh"]}, format="json")

    assert _me(rotated["access"]).status_code == 401
    assert _me(first["access"]).status_code == 401
    assert _me(other_login["access"]).status_code == 200


def test_a_refresh_token_of_a_logged_out_family_is_refused_even_if_not_blacklisted(api_client, alice):
    tokens = _tokens(api_client)
    twin = _rotated_without_blacklisting(tokens["refresh"])

    api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
    response = _refresh(twin)

    assert response.status_code == 401
    assert "revoked by a logout" in response.json()["detail"]


def test_a_logout_forgets_families_revoked_longer_ago_than_the_refresh_lifetime(api_client, alice, settings):
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    RevokedTokenFamily.objects.create(sid="expired", revoked_at=timezone.now() - lifetime - timedelta(minutes=1))
    RevokedTokenFamily.objects.create(sid="recent", revoked_at=timezone.now() - lifetime + timedelta(minutes=1))
    tokens = _tokens(api_client)

    api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert set(RevokedTokenFamily.objects.values_list("sid", flat=True)) == {"recent", _sid(tokens["refresh"])}


def _rotated_without_blacklisting(refresh: str) -> str:
    """A second live refresh token of the family: what two refreshes racing on one token leave behind."""
    token = RefreshToken(refresh)
    token.set_jti()
    token.set_exp()
    token.set_iat()
    token.outstand()
    return str(token)


def _sid(refresh: str) -> str:
    return RefreshToken(refresh, verify=False)["sid"]


# --- the audit log -------------------------------------------------------------------------------------


def test_logins_and_failed_logins_are_audited_with_the_address_the_server_saw(client, api_client, alice):
    _page_login(client, password=PASSWORD, REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="6.6.6.6")
    _api_login(api_client, password=PASSWORD, REMOTE_ADDR="192.0.2.11")
    client.logout()
    _page_login(client, email="nobody@example.com", REMOTE_ADDR="192.0.2.12")

    events = list(
        AuditEvent.objects.exclude(event="logout").order_by("pk").values_list("event", "actor_email", "ip", "detail")
    )

    assert events == [
        ("login", "alice@example.com", "192.0.2.10", {"via": "page"}),
        ("login", "alice@example.com", "192.0.2.11", {"via": "api"}),
        ("login_failed", "nobody@example.com", "192.0.2.12", {}),
    ]


def test_a_role_change_through_the_api_is_audited(api_as, alice, admin_user):
    api_as(admin_user).patch(reverse("api-v1:user-detail", args=[alice.pk]), {"role": "admin"}, format="json")

    event = AuditEvent.objects.get(event=AuditEvent.Event.ROLE_CHANGED)

    assert (event.actor, event.target, event.detail) == (admin_user, "user alice@example.com",
                                                          {"from": "user", "to": "admin"})  # fmt: skip


def test_a_role_change_in_the_django_admin_is_audited(client, alice, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:accounts_user_change", args=[alice.pk])

    response = client.post(url, {"email": alice.email, "full_name": alice.full_name, "role": "admin",
                                 "is_active": "on", "date_joined_0": "2024-01-01", "date_joined_1": "00:00:00"})  # fmt: skip

    assert response.status_code == 302
    event = AuditEvent.objects.get(event=AuditEvent.Event.ROLE_CHANGED)
    assert event.detail == {"from": "user", "to": "admin"}


def test_admins_see_the_audit_log_filtered_by_event_and_plain_users_do_not(client, alice, admin_user):
    _page_login(client, password=PASSWORD)
    client.logout()
    _page_login(client, email="mallory@example.com")
    client.force_login(admin_user)
    url = reverse("admin:accounts_auditevent_changelist")

    filtered = client.get(url, {"event__exact": "login_failed"}).content.decode()
    change = client.post(reverse("admin:accounts_auditevent_change", args=[AuditEvent.objects.first().pk]), {})
    client.force_login(alice)
    as_user = client.get(url)

    assert "mallory@example.com" in filtered and "alice@example.com" not in filtered.split("result_list")[-1]
    assert change.status_code == 403
    assert as_user.status_code == 302


def test_an_admin_deleting_a_user_is_audited(client, alice, admin_user):
    client.force_login(admin_user)

    client.post(reverse("admin:accounts_user_delete", args=[alice.pk]), {"post": "yes"})

    assert not User.objects.filter(pk=alice.pk).exists()
    event = AuditEvent.objects.get(event=AuditEvent.Event.DELETION)
    assert (event.actor, event.target) == (admin_user, "user alice@example.com")
