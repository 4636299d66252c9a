from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from sigmasight.accounts.api import serializers as s
from sigmasight.accounts.services import token_revoke, tokens_issue
from sigmasight.api.throttling import AnonThrottle, LoginEmailThrottle, LoginIPThrottle
from sigmasight.api.users import request_user


class RegistrationPermission(permissions.BasePermission):
    """Staff register users; anyone may when SIGMASIGHT_OPEN_REGISTRATION is on."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if settings.SIGMASIGHT_OPEN_REGISTRATION:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class PublicTokenView(APIView):
    """No authentication needed, but token failures are still 401 with the Bearer challenge
    (DRF would turn them into 403 for a view without authenticators)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class LoginView(PublicTokenView):
    # On top of the anonymous rate: attempts per client IP and per attempted email.
    throttle_classes = [AnonThrottle, LoginIPThrottle, LoginEmailThrottle]

    @extend_schema(request=s.LoginSerializer, responses={200: s.TokenPairSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        body = s.LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(tokens_issue(**body.validated_data, request=request))


class RefreshView(PublicTokenView):
    @extend_schema(
        request=s.RefreshSerializer, responses={200: s.RefreshedSerializer}, tags=["auth"]
    )
    def post(self, request: Request) -> Response:
        # simplejwt rotates the token and blacklists the old one (ROTATE/BLACKLIST settings);
        # its InvalidToken becomes a 401 envelope in the exception handler.
        body = s.RotatingRefreshSerializer(data=request.data)
        try:
            body.is_valid(raise_exception=True)
        except TokenError as exc:  # blacklisted, expired or malformed: 401, never a 500
            raise InvalidToken(exc.args[0]) from exc
        return Response(
            {"access": body.validated_data["access"], "refresh": body.validated_data["refresh"]}
        )


class LogoutView(APIView):
    @extend_schema(
        request=s.RefreshSerializer,
        responses={205: OpenApiResponse(description="Logged out; the refresh token is revoked.")},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        body = s.RefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token_revoke(user=request_user(request), refresh=body.validated_data["refresh"])
        return Response(status=status.HTTP_205_RESET_CONTENT)
