"""A URLConf for exercising the exception handler with views that fail in known ways."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import OperationalError
from django.http import Http404
from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from sigmasight.exceptions import InsufficientHistory


class Body(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    legs = serializers.ListField(child=serializers.IntegerField(), min_length=1)


class Failing(APIView):
    permission_classes: list = []
    authentication_classes: list = []

    def get(self, request, kind: str):
        if kind == "domain":
            raise InsufficientHistory(
                "Only 12 sessions of history; 60 are needed.",
                fields={"sessions": 12, "required": 60},
            )
        if kind == "http404":
            raise Http404("secret detail")
        if kind == "denied":
            raise PermissionDenied("secret detail")
        if kind == "database":
            raise OperationalError("connection refused")
        if kind == "crash":
            raise RuntimeError("secret internal detail")
        return Response({"ok": True})

    def post(self, request, kind: str):
        Body(data=request.data).is_valid(raise_exception=True)
        return Response({"ok": True})


urlpatterns = [
    path("fail/<str:kind>/", Failing.as_view()),
    path("", include("sigmasight.urls")),
]
