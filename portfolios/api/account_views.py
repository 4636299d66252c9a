"""POST /auth/register/ (a user and their first portfolio) and GET /auth/me/ (the user and their
portfolios): account endpoints that read or write portfolios, so they live with them."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolios.api.account_serializers import MeSerializer
from portfolios.models import Portfolio
from portfolios.services import user_register
from sigmasight.accounts.api.serializers import RegisteredSerializer, RegisterSerializer
from sigmasight.accounts.api.views import RegistrationPermission
from sigmasight.accounts.models import User
from sigmasight.api.users import request_user


class RegisterView(APIView):
    permission_classes = [RegistrationPermission]

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer}, tags=["auth"])
    def post(self, request: Request) -> Response:
        body = RegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, portfolio = user_register(**body.validated_data)
        payload = {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "portfolio_id": portfolio.pk,
        }
        return Response(RegisteredSerializer(payload).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer}, tags=["auth"])
    def get(self, request: Request) -> Response:
        user = User.objects.prefetch_related(
            Prefetch("portfolios", queryset=Portfolio.objects.order_by("id"))
        ).get(pk=request_user(request).pk)
        return Response(MeSerializer(user).data)
