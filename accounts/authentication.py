"""Bearer-token authentication that also ends tokens early: after a password change or reset (the token's
``hash_password`` claim, checked by simplejwt's CHECK_REVOKE_TOKEN) and after a logout (the token's
family ``sid`` is revoked)."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from accounts.services import auth_family_revoked


class JWTAuthentication(BaseJWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if validated_token.get("sid") and auth_family_revoked(sid=validated_token["sid"]):
            raise AuthenticationFailed("This token was revoked by a logout.", code="token_revoked")
        return user


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI schema names our subclass like simplejwt's own (``jwtAuth``, a bearer token)."""

    target_class = "accounts.authentication.JWTAuthentication"
