import re

import pytest
from django.urls import reverse

from accounts.models import User
from conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client, email, password=PASSWORD, **extra):
    return client.post(reverse("accounts:login"), {"username": email, "password": password}, **extra)


def test_login_page_renders_an_email_field(client):
    response = client.get(reverse("accounts:login"))

    assert response.status_code == 200
    assert b'type="email"' in response.content


def test_login_with_the_right_password_redirects_to_the_dashboard(client, alice):
    response = _login(client, "alice@example.com")

    assert response.status_code == 302
    assert response.url == reverse("projects:dashboard")


def test_login_with_a_wrong_password_shows_the_form_again(client, alice):
    response = _login(client, "alice@example.com", "wrong-password")

    assert response.status_code == 200
    assert b"Please enter a correct" in response.content


def test_the_eleventh_login_attempt_is_refused_with_a_clear_message(client, alice):
    earlier = [_login(client, "alice@example.com", "wrong-password").status_code for _ in range(10)]

    response = _login(client, "alice@example.com")

    assert earlier == [200] * 10
    assert response.status_code == 429
    assert b"Too many login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_the_address_throttle_counts_attempts_for_any_email_but_not_other_addresses(client, alice, bob, settings):
    settings.LOGIN_THROTTLE = "1/min"
    _login(client, "alice@example.com", "wrong-password")

    other_email = _login(client, "bob@example.com")
    other_address = _login(client, "bob@example.com", REMOTE_ADDR="10.9.8.7")

    assert other_email.status_code == 429
    assert other_address.status_code == 302


def test_logout_is_post_only_and_ends_the_session(client, alice):
    client.force_login(alice)

    wrong_method = client.get(reverse("accounts:logout"))
    response = client.post(reverse("accounts:logout"))

    assert wrong_method.status_code == 405
    assert response.status_code == 302
    assert client.get(reverse("projects:dashboard")).status_code == 302


def test_password_change_flow_sets_the_new_password(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "brand-new-secret-77", "new_password2": "brand-new-secret-77"},
    )

    alice.refresh_from_db()
    assert response.url == reverse("accounts:password_change_done")
    assert alice.check_password("brand-new-secret-77")
    assert client.get(response.url).status_code == 200


def test_password_change_requires_login(client):
    response = client.get(reverse("accounts:password_change"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_signup_is_a_404_when_disabled(client, settings):
    settings.SIGNUP_ENABLED = False

    assert client.get(reverse("accounts:signup")).status_code == 404


def _signup(client, email):
    return client.post(
        reverse("accounts:signup"),
        {"email": email, "full_name": "New", "password1": "a-fine-password-9", "password2": "a-fine-password-9"},
    )


def test_signup_answers_the_same_for_a_new_and_a_registered_email(
    client, settings, alice, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SIGNUP_ENABLED = True

    with django_capture_on_commit_callbacks(execute=True):
        new = _signup(client, "New@Example.com")
        taken = _signup(client, "alice@example.com")

    def page(response):  # the main content; nonces and CSRF tokens differ per response by design
        main = re.search(r"<main.*</main>", response.content.decode(), flags=re.S).group(0)
        return main.replace("New@Example.com", "X").replace("alice@example.com", "X")

    assert new.status_code == taken.status_code == 200
    assert page(new) == page(taken)
    assert "Check your email" in page(new)
    assert [m.to for m in mailoutbox] == [["new@example.com"], ["alice@example.com"]]
    assert "/accounts/signup/confirm/" in mailoutbox[0].body
    assert "already has one" in mailoutbox[1].body and "/confirm/" not in mailoutbox[1].body
    assert not User.objects.get(email="new@example.com").is_active
    assert "_auth_user_id" not in client.session


def test_the_signup_link_activates_the_account_and_logs_in_once(
    client, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.SIGNUP_ENABLED = True
    with django_capture_on_commit_callbacks(execute=True):
        _signup(client, "new@example.com")
    link = re.search(r"http://testserver(/accounts/signup/confirm/\S+/)", mailoutbox[0].body).group(1)

    first = client.get(link)
    client.logout()
    again = client.get(link)

    user = User.objects.get(email="new@example.com")
    assert first.status_code == 302 and first.url == reverse("projects:dashboard")
    assert user.is_active and user.role == User.Role.USER
    assert again.status_code == 302 and again.url == reverse("accounts:login")
    assert "_auth_user_id" not in client.session


def test_a_made_up_signup_link_logs_nobody_in(client, settings, alice):
    settings.SIGNUP_ENABLED = True

    response = client.get(reverse("accounts:signup-confirm", args=["MQ", "abc-123"]))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
