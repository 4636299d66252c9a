from __future__ import annotations

from django.urls import path

from sigmasight.accounts.api import views

app_name = "auth"
# register/ and me/ (they read and write portfolios) are portfolios.api.account_urls.

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("refresh/", views.RefreshView.as_view(), name="refresh"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]
