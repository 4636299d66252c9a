from __future__ import annotations

from django.urls import path

from portfolios.api import account_views as views

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="register"),
    path("me/", views.MeView.as_view(), name="me"),
]
