"""Forgot your password? The emailed link (Django's reset views with our templates): the same answer for every
address, throttled like login, and a reset that ends the old API tokens and browser sessions, audited."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from conftest import PASSWORD

pytestmark = pytest.mark.django_db

RESET = reverse("accounts:password_reset")
NEW_PASSWORD = "a-fresh-secret-93"
MAIN = re.compile(rb'<main class="content" id="main">.*?</main>', re.S)
LINK = re.compile(r"https?://[^/\s]+(/accounts/password-reset/[^/\s]+/[^/\s]+/)")


def _api_tokens(email: str, password: str):
    return APIClient().post(reverse("api-v1:auth-login"), {"email": email, "password": password}, format="json")


def _me(access: str) -> int:
    return APIClient().get(reverse("api-v1:auth-me"), HTTP_AUTHORIZATION=f"Bearer {access}").status_code


def _refresh(refresh: str) -> int:
    return APIClient().post(reverse("api-v1:auth-refresh"), {"refresh": refresh}, format="json").status_code


def _reset_with_emailed_link(client: Client, password: str):
    """Follow the link of the last mail, set ``password``; the final response."""
    path = LINK.search(mail.outbox[-1].body).group(1)
    form_page = client.get(path, follow=True)  # Django swaps the token into the session, then redirects
    assert form_page.context["validlink"] is True
    return client.post(form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})


def test_the_login_page_links_to_the_reset_page(client):
    response = client.get(reverse("accounts:login"))

    assert f'href="{RESET}">Forgot your password?</a>'.encode() in response.content


def test_a_reset_by_the_emailed_link_sets_the_password_and_ends_old_tokens_and_sessions(client, alice):
    tokens = _api_tokens(alice.email, PASSWORD).json()
    elsewhere = Client()
    elsewhere.force_login(alice)

    sent = client.post(RESET, {"email": "Alice@Example.com"})
    done = _reset_with_emailed_link(client, NEW_PASSWORD)

    assert sent.status_code == 302 and sent.url == reverse("accounts:password_reset_done")
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert done.status_code == 302 and done.url == reverse("accounts:password_reset_complete")
    assert _api_tokens(alice.email, NEW_PASSWORD).status_code == 200
    assert _api_tokens(alice.email, PASSWORD).status_code == 401
    assert (_me(tokens["access"]), _refresh(tokens["refresh"])) == (401, 401)
    assert elsewhere.get(reverse("projects:dashboard")).status_code == 302  # logged out: back to the login page
    reset = AuditEvent.objects.get(event=AuditEvent.Event.PASSWORD_RESET)
    assert (reset.actor, reset.target, reset.ip) == (alice, f"user {alice.email}", "127.0.0.1")


def test_a_reset_unlocks_an_account_that_wrong_passwords_locked(client, alice, settings):
    settings.LOGIN_ACCOUNT_THROTTLE = "2/15min"
    attacker = Client(REMOTE_ADDR="198.51.100.9")
    for _ in range(2):
        attacker.post(reverse("accounts:login"), {"username": alice.email, "password": "guess"})
    locked = Client(REMOTE_ADDR="192.0.2.1").post(
        reverse("accounts:login"), {"username": alice.email, "password": PASSWORD}
    )

    client.post(RESET, {"email": alice.email})
    _reset_with_emailed_link(client, NEW_PASSWORD)
    after = Client(REMOTE_ADDR="192.0.2.1").post(
        reverse("accounts:login"), {"username": alice.email, "password": NEW_PASSWORD}
    )

    assert locked.status_code == 429
    assert after.status_code == 302


def test_the_emailed_link_works_once(client, alice):
    client.post(RESET, {"email": alice.email})
    path = LINK.search(mail.outbox[-1].body).group(1)
    _reset_with_emailed_link(client, NEW_PASSWORD)

    again = Client().get(path, follow=True)

    assert again.context["validlink"] is False
    assert b"This link does not work" in again.content


def test_an_unknown_email_gets_the_same_answer_and_no_mail(client, alice):
    known = client.post(RESET, {"email": alice.email}, follow=True)
    mail.outbox.clear()

    unknown = client.post(RESET, {"email": "nobody@example.com"}, follow=True)

    assert unknown.redirect_chain == known.redirect_chain
    assert MAIN.search(unknown.content).group(0) == MAIN.search(known.content).group(0)
    assert mail.outbox == []


def test_reset_requests_are_throttled_per_address_whatever_email_or_forwarded_header(client, settings):
    settings.LOGIN_THROTTLE = "3/min"

    statuses = [
        client.post(RESET, {"email": f"someone{n}@example.com"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(5)
    ]  # fmt: skip

    assert statuses == [302] * 3 + [429] * 2
    assert AuditEvent.objects.filter(event=AuditEvent.Event.LOCKOUT, target="password reset address").count() == 1


def test_reset_mails_to_one_address_are_limited_from_any_client(alice, settings):
    settings.LOGIN_ACCOUNT_THROTTLE = "2/15min"

    responses = [Client(REMOTE_ADDR=f"192.0.2.{n}").post(RESET, {"email": alice.email}) for n in range(3)]

    assert [r.status_code for r in responses] == [302, 302, 429]
    assert b"Too many password reset requests" in responses[-1].content
    assert len(mail.outbox) == 2


def test_the_reset_page_refuses_other_methods(client):
    assert client.put(RESET).status_code == 405
