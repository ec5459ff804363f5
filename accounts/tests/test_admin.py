import pytest
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("url_name", ["admin:accounts_user_changelist", "admin:accounts_user_add"])
def test_user_admin_pages_load(admin_client, url_name):
    assert admin_client.get(reverse(url_name)).status_code == 200


def test_user_admin_change_page_loads(admin_client, alice):
    response = admin_client.get(reverse("admin:accounts_user_change", args=[alice.pk]))

    assert response.status_code == 200
    assert b"alice@example.com" in response.content


def test_user_admin_changelist_filters_by_role_and_searches(admin_client, alice):
    response = admin_client.get(reverse("admin:accounts_user_changelist"), {"role__exact": "user", "q": "alice"})

    assert list(response.context["cl"].result_list) == [alice]


def test_adding_a_user_in_the_admin_hashes_the_password(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "Added@Example.com",
            "full_name": "Added",
            "role": "user",
            "usable_password": "true",
            "password1": "a-fine-password-9",
            "password2": "a-fine-password-9",
        },
    )

    user = User.objects.get(email="added@example.com")
    assert response.status_code == 302
    assert user.check_password("a-fine-password-9")
    assert not user.is_staff


def test_changing_the_role_in_the_admin_grants_admin_rights(admin_client, alice):
    response = admin_client.post(
        reverse("admin:accounts_user_change", args=[alice.pk]),
        {
            "email": alice.email,
            "full_name": alice.full_name,
            "role": "admin",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    alice.refresh_from_db()
    assert response.status_code == 302
    assert alice.is_staff and alice.is_superuser


def test_the_admin_is_closed_to_plain_users(client, alice):
    client.force_login(alice)

    response = client.get(reverse("admin:accounts_user_changelist"))

    assert response.status_code == 302


def test_the_admin_login_shares_the_login_throttle(client, admin_user, settings):
    settings.LOGIN_THROTTLE = "1/min"
    client.post(reverse("admin:login"), {"username": "admin@example.com", "password": "wrong"})

    response = client.post(reverse("admin:login"), {"username": "admin@example.com", "password": "pw-for-tests-1"})

    assert b"Too many login attempts" in response.content
    assert "_auth_user_id" not in client.session
