import datetime as dt

import jwt
import pytest
from django.conf import settings
from django.urls import include, path, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import _load_enum_name_overrides
from drf_spectacular.settings import patched_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("api-v1:auth-login")
REFRESH = reverse("api-v1:auth-refresh")
LOGOUT = reverse("api-v1:auth-logout")
ME = reverse("api-v1:auth-me")


def _login(api_client, email="alice@example.com", password=PASSWORD):
    return api_client.post(LOGIN, {"email": email, "password": password}, format="json")


# --- login, refresh, logout, me --------------------------------------------------------------


def test_login_returns_tokens_and_the_user(api_client, alice):
    response = _login(api_client)

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh", "user"}
    assert response.json()["user"]["email"] == "alice@example.com"


def test_login_with_a_wrong_password_is_401(api_client, alice):
    response = _login(api_client, password="nope")

    assert response.status_code == 401


def test_login_of_an_inactive_user_is_401(api_client, alice):
    alice.is_active = False
    alice.save()

    assert _login(api_client).status_code == 401


def test_login_wrong_method_is_405(api_client):
    assert api_client.get(LOGIN).status_code == 405


def test_the_eleventh_api_login_attempt_gets_429(api_client, alice):
    earlier = [_login(api_client, password="nope").status_code for _ in range(10)]

    response = _login(api_client)

    assert earlier == [401] * 10
    assert response.status_code == 429


def test_the_login_throttle_rate_follows_the_setting(api_client, alice, settings):
    settings.LOGIN_THROTTLE = "2/min"
    _login(api_client, password="nope")
    _login(api_client, password="nope")

    assert _login(api_client).status_code == 429


def test_refresh_rotates_and_the_old_refresh_token_is_then_refused(api_client, alice):
    first = _login(api_client).json()["refresh"]

    rotated = api_client.post(REFRESH, {"refresh": first}, format="json")
    reused = api_client.post(REFRESH, {"refresh": first}, format="json")

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first
    assert reused.status_code == 401


def test_logout_blacklists_the_refresh_token(api_client, alice):
    refresh = _login(api_client).json()["refresh"]

    response = api_client.post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 204
    assert api_client.post(REFRESH, {"refresh": refresh}, format="json").status_code == 401


def test_logout_with_a_garbage_token_is_401(api_client):
    assert api_client.post(LOGOUT, {"refresh": "not-a-token"}, format="json").status_code == 401


def test_me_returns_the_bearer_tokens_user(api_client, alice):
    access = _login(api_client).json()["access"]

    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")

    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"


def test_me_without_credentials_is_401(api_client):
    assert api_client.get(ME).status_code == 401


def test_me_wrong_method_is_405(api_as, alice):
    assert api_as(alice).post(ME).status_code == 405


# --- hostile tokens ----------------------------------------------------------------------------


def _claims(user) -> dict:
    return jwt.decode(str(AccessToken.for_user(user)), options={"verify_signature": False})


def _forged(user) -> str:
    return "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJl"


def _expired(user) -> str:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    claims = {**_claims(user), "exp": int(past.timestamp()), "iat": int(past.timestamp()) - 60}
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def _alg_none(user) -> str:
    return jwt.encode(_claims(user), None, algorithm="none")


def _wrong_signature(user) -> str:
    return jwt.encode(_claims(user), "some-other-secret-key-of-enough-length", algorithm="HS256")


def _refresh_as_access(user) -> str:
    return str(RefreshToken.for_user(user))


@pytest.mark.parametrize("make_token", [_forged, _expired, _alg_none, _wrong_signature, _refresh_as_access])
def test_hostile_access_tokens_get_401(api_client, alice, make_token):
    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {make_token(alice)}")

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("claims_patch", "key", "algorithm"),
    [
        pytest.param({"exp": 1_000_000_000}, settings.SIMPLE_JWT["SIGNING_KEY"], "HS256", id="expired"),
        pytest.param({}, None, "none", id="alg-none"),
        pytest.param({}, "some-other-secret-key-of-enough-length", "HS256", id="wrong-signature"),
    ],
)
def test_hostile_refresh_tokens_get_401(api_client, alice, claims_patch, key, algorithm):
    claims = jwt.decode(str(RefreshToken.for_user(alice)), options={"verify_signature": False})
    token = jwt.encode({**claims, **claims_patch}, key, algorithm=algorithm)

    response = api_client.post(REFRESH, {"refresh": token}, format="json")

    assert response.status_code == 401


def test_a_valid_token_of_a_deactivated_user_gets_401(api_as, alice):
    client = api_as(alice)
    alice.is_active = False
    alice.save()

    assert client.get(ME).status_code == 401


# --- users (admin only) ------------------------------------------------------------------------

USERS = reverse("api-v1:user-list")


def test_admin_lists_users_paginated(api_as, admin_user, alice):
    response = api_as(admin_user).get(USERS)

    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert {u["email"] for u in response.json()["results"]} == {"admin@example.com", "alice@example.com"}


def test_admin_creates_a_user_with_a_hashed_password(api_as, admin_user):
    response = api_as(admin_user).post(
        USERS, {"email": "New@Example.com", "password": "a-fine-password-9", "role": "admin"}, format="json"
    )

    user = User.objects.get(email="new@example.com")
    assert response.status_code == 201
    assert "password" not in response.json()
    assert user.check_password("a-fine-password-9")
    assert user.is_staff


def test_creating_a_user_with_a_taken_email_is_400(api_as, admin_user, alice):
    response = api_as(admin_user).post(
        USERS, {"email": "alice@example.com", "password": "a-fine-password-9"}, format="json"
    )

    assert response.status_code == 400
    assert "email" in response.json()


def test_admin_gets_and_patches_a_user(api_as, admin_user, alice):
    url = reverse("api-v1:user-detail", args=[alice.pk])
    client = api_as(admin_user)

    got = client.get(url)
    patched = client.patch(url, {"role": "admin", "is_active": False}, format="json")

    alice.refresh_from_db()
    assert got.json()["email"] == "alice@example.com"
    assert patched.status_code == 200
    assert alice.is_superuser and not alice.is_active


def test_patching_a_user_with_a_weak_password_is_400_and_keeps_the_old_one(api_as, admin_user, alice):
    response = api_as(admin_user).patch(
        reverse("api-v1:user-detail", args=[alice.pk]), {"password": "1"}, format="json"
    )

    alice.refresh_from_db()
    assert response.status_code == 400
    assert alice.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("method", "url_name", "needs_pk"),
    [
        ("get", "user-list", False),
        ("post", "user-list", False),
        ("get", "user-detail", True),
        ("patch", "user-detail", True),
    ],
)
def test_users_api_is_403_for_non_admins(api_as, alice, bob, method, url_name, needs_pk):
    url = reverse(f"api-v1:{url_name}", args=[bob.pk] if needs_pk else [])

    response = getattr(api_as(alice), method)(
        url, {"email": "x@example.com", "password": "a-fine-password-9"}, format="json"
    )

    assert response.status_code == 403
    assert not User.objects.filter(email="x@example.com").exists()


def test_users_api_is_401_without_credentials(api_client):
    assert api_client.get(USERS).status_code == 401


def test_users_detail_wrong_method_is_405(api_as, admin_user, alice):
    assert api_as(admin_user).delete(reverse("api-v1:user-detail", args=[alice.pk])).status_code == 405


def test_unknown_user_is_404(api_as, admin_user):
    assert api_as(admin_user).get(reverse("api-v1:user-detail", args=[99999])).status_code == 404


# --- OpenAPI schema ----------------------------------------------------------------------------


def test_schema_endpoint_lists_the_accounts_and_projects_paths(api_as, alice):
    response = api_as(alice).get(reverse("api-v1:schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")

    paths = response.json()["paths"]
    assert response.status_code == 200
    assert {"/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/me"} <= set(paths)
    assert {"/api/v1/users/", "/api/v1/users/{id}/", "/api/v1/projects/", "/api/v1/datasets/{id}/"} <= set(paths)
    assert "/api/v1/projects/{id}/members/{member_pk}/" in paths


# Two choice sets share the field name "role" (user roles, project roles): drf-spectacular needs names for
# them. These belong in settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] (the lead's file; requested).
ENUM_NAME_OVERRIDES = {
    "UserRoleEnum": "accounts.models.User.Role",
    "ProjectRoleEnum": "projects.models.ProjectMember.Role",
}


def test_our_api_views_generate_a_schema_without_warnings():
    patterns = [
        path(
            "api/v1/",
            include(([path("", include("accounts.api_urls")), path("", include("projects.api_urls"))], "api-v1")),
        )
    ]
    GENERATOR_STATS.reset()
    _load_enum_name_overrides.cache_clear()

    with patched_settings({"ENUM_NAME_OVERRIDES": ENUM_NAME_OVERRIDES}):
        schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    _load_enum_name_overrides.cache_clear()

    assert not GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache
    assert {"UserRoleEnum", "ProjectRoleEnum"} <= set(schema["components"]["schemas"])
