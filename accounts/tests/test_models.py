import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_admin_role_grants_staff_and_superuser_on_save():
    user = UserFactory(role=User.Role.ADMIN)

    user.refresh_from_db()

    assert user.is_staff and user.is_superuser


def test_demoting_an_admin_removes_staff_and_superuser():
    user = UserFactory(role=User.Role.ADMIN)

    user.role = User.Role.USER
    user.save()
    user.refresh_from_db()

    assert not user.is_staff and not user.is_superuser


def test_email_is_stored_lower_case_and_login_lookup_ignores_case():
    user = User.objects.create_user("Mixed.Case@Example.COM", "pw-for-tests-1")

    assert user.email == "mixed.case@example.com"
    assert User.objects.get_by_natural_key("MIXED.case@example.com") == user


def test_createsuperuser_noinput_reads_email_and_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password-42")

    call_command("createsuperuser", "--noinput", verbosity=0)

    user = User.objects.get(email="root@example.com")
    assert user.role == User.Role.ADMIN
    assert user.is_superuser and user.is_staff
    assert user.check_password("a-long-admin-password-42")
