"""JWT auth and the admin-only users API: one APIView per endpoint, plain serializers, services underneath."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.models import AuditEvent, User
from accounts.selectors import user_list
from accounts.services import (
    audit_record,
    auth_family_revoked,
    auth_refresh_revoke,
    auth_tokens_issue,
    user_create,
    user_update,
)
from accounts.throttling import login_attempt_check
from codingagent.lib.http import api_validation_errors, paginated_response, paginated_serializer


class UserOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    role = serializers.ChoiceField(choices=User.Role.choices)
    is_active = serializers.BooleanField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)


class IsAdminRole(BasePermission):
    message = "Only administrators can manage users."

    def has_permission(self, request: Request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_admin)


class _PublicAuthApi(APIView):
    # Token endpoints authenticate by their body, so no session/CSRF or bearer is needed.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        # Keeps bad credentials/tokens a 401 (DRF answers 403 when a view has no authenticator).
        return 'Bearer realm="api"'


class LoginApi(_PublicAuthApi):
    """Throttled like the login page (per client address and per account), 429 with Retry-After."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginInput"

        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginOutput"

        access = serializers.CharField()
        refresh = serializers.CharField()
        user = UserOutputSerializer()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        email = request.data.get("email", "") if hasattr(request.data, "get") else ""
        refusal = login_attempt_check(request._request, email=str(email))
        if refusal is not None:
            raise Throttled(wait=refusal.wait, detail=refusal.message)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request, email=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None:
            raise AuthenticationFailed("No active account found with the given email and password.")
        tokens = auth_tokens_issue(user=user)
        audit_record(event=AuditEvent.Event.LOGIN, user=user, request=request._request, detail={"via": "api"})
        return Response(self.OutputSerializer({**tokens, "user": user}).data)


class _RefreshSerializer(TokenRefreshSerializer):
    def validate(self, attrs):
        token = RefreshToken(attrs["refresh"])
        user = User.objects.filter(pk=token.get("user_id")).first()
        if user is None or token.get("hash_password") != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The password changed since this token was issued; log in again.")
        # A logout ends the family for good: no token of it is rotated again (so its row may be pruned once
        # the refresh lifetime has passed, see auth_refresh_revoke).
        if token.get("sid") and auth_family_revoked(sid=token["sid"]):
            raise AuthenticationFailed("This token was revoked by a logout.", code="token_revoked")
        return super().validate(attrs)


class RefreshApi(_PublicAuthApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefreshInput"

        refresh = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefreshOutput"

        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        # simplejwt's serializer does the rotation and blacklists the old refresh token; ours also refuses a
        # refresh token issued under an earlier password.
        serializer = _RefreshSerializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(self.OutputSerializer(serializer.validated_data).data)


class LogoutApi(_PublicAuthApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LogoutInput"

        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = auth_refresh_revoke(refresh=data.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        audit_record(event=AuditEvent.Event.LOGOUT, user=user, request=request._request, detail={"via": "api"})
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(UserOutputSerializer(request.user).data)


class UserListApi(APIView):
    """GET lists users, POST creates one (admins only)."""

    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "UserListInput"

        email = serializers.EmailField()
        password = serializers.CharField(trim_whitespace=False, write_only=True)
        full_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
        role = serializers.ChoiceField(choices=User.Role.choices, default=User.Role.USER)
        is_active = serializers.BooleanField(default=True)

    @extend_schema(operation_id="users_list", responses={200: paginated_serializer(UserOutputSerializer)})
    def get(self, request: Request) -> Response:
        return paginated_response(
            queryset=user_list(), serializer_class=UserOutputSerializer, request=request, view=self
        )

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            user = user_create(**data.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "UserDetailInput"

        full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
        role = serializers.ChoiceField(choices=User.Role.choices, required=False)
        is_active = serializers.BooleanField(required=False)
        password = serializers.CharField(trim_whitespace=False, write_only=True, required=False)

    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(UserOutputSerializer(get_object_or_404(user_list(), pk=pk)).data)

    @extend_schema(request=InputSerializer, responses={200: UserOutputSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        user = get_object_or_404(user_list(), pk=pk)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        with api_validation_errors():
            user = user_update(user=user, data=data.validated_data, actor=request.user)
        return Response(UserOutputSerializer(user).data)
