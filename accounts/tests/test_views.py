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


def test_the_login_throttle_is_per_ip_and_email(client, alice, bob, settings):
    settings.LOGIN_THROTTLE = "1/min"
    _login(client, "alice@example.com", "wrong-password")

    other_email = _login(client, "bob@example.com")
    other_ip = _login(client, "alice@example.com", REMOTE_ADDR="10.9.8.7")

    assert other_email.status_code == 302
    assert other_ip.status_code == 302


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


def test_signup_creates_a_user_and_logs_them_in_when_enabled(client, settings):
    settings.SIGNUP_ENABLED = True

    response = client.post(
        reverse("accounts:signup"),
        {
            "email": "New@Example.com",
            "full_name": "New",
            "password1": "a-fine-password-9",
            "password2": "a-fine-password-9",
        },
    )

    user = User.objects.get(email="new@example.com")
    assert response.status_code == 302
    assert user.role == User.Role.USER
    assert client.session["_auth_user_id"] == str(user.pk)


def test_signup_shows_errors_for_a_taken_email(client, settings, alice):
    settings.SIGNUP_ENABLED = True

    response = client.post(
        reverse("accounts:signup"),
        {"email": "alice@example.com", "password1": "a-fine-password-9", "password2": "a-fine-password-9"},
    )

    assert response.status_code == 400
    assert b"already exists" in response.content
