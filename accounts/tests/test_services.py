import pytest
from django.core.exceptions import ValidationError
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.services import auth_refresh_revoke, auth_tokens_issue, user_create, user_update

pytestmark = pytest.mark.django_db


def test_user_create_hashes_the_password_and_lowercases_the_email():
    user = user_create(email="New@Example.com", password="correct-horse-battery", full_name="New Person")

    assert user.email == "new@example.com"
    assert user.check_password("correct-horse-battery")
    assert user.password != "correct-horse-battery"


def test_user_create_refuses_an_email_that_differs_only_in_case(alice):
    with pytest.raises(ValidationError) as exc:
        user_create(email="ALICE@example.com", password="correct-horse-battery")

    assert "email" in exc.value.message_dict


def test_user_create_refuses_a_weak_password():
    with pytest.raises(ValidationError) as exc:
        user_create(email="weak@example.com", password="123")

    assert "password" in exc.value.message_dict
    assert not User.objects.filter(email="weak@example.com").exists()


def test_user_update_promotes_to_admin_and_changes_the_password(alice):
    user_update(user=alice, data={"role": User.Role.ADMIN, "password": "another-good-password"})

    alice.refresh_from_db()
    assert alice.is_superuser
    assert alice.check_password("another-good-password")


def test_auth_tokens_issue_sets_last_login(alice):
    tokens = auth_tokens_issue(user=alice)

    alice.refresh_from_db()
    assert set(tokens) == {"access", "refresh"}
    assert alice.last_login is not None


def test_auth_refresh_revoke_blacklists_the_token(alice):
    refresh = str(RefreshToken.for_user(alice))

    auth_refresh_revoke(refresh=refresh)

    with pytest.raises(TokenError):
        RefreshToken(refresh)
