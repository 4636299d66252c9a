"""Signing in and out of the pages: a Django session for the same accounts as the API, behind
the API's login throttles (per client address and per attempted email)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from rest_framework.parsers import FormParser
from rest_framework.request import Request

from modeling.web.common import portfolios_of, signed_in
from sigmasight.accounts.services import InvalidCredentials, user_sign_in
from sigmasight.api.throttling import LoginEmailThrottle, LoginIPThrottle


class SignInForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autofocus": True}))
    password = forms.CharField(max_length=4096, strip=False, widget=forms.PasswordInput)


def _throttled(request: HttpRequest) -> float | None:
    """Seconds to wait when an attempt is over a login rate (counted as the API counts them)."""
    wrapped = Request(request, parsers=[FormParser()])
    for throttle in (LoginIPThrottle(), LoginEmailThrottle()):
        if not throttle.allow_request(wrapped, None):  # type: ignore[arg-type]  # no view needed
            return throttle.wait() or 60.0
    return None


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("web:home")


def signin(request: HttpRequest) -> HttpResponse:
    """`/` for a visitor: the sign-in form, with links to the API docs and the admin."""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_next(request))
    form = SignInForm(request.POST or None)
    status = 200
    response_headers: dict[str, str] = {}
    if request.method == "POST":
        wait = _throttled(request)
        if wait is not None:
            form.add_error(None, "Too many sign-in attempts. Try again in a minute.")
            status = 429
            response_headers["Retry-After"] = str(int(wait) + 1)
        elif form.is_valid():
            try:
                user = user_sign_in(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    request=request,
                )
            except InvalidCredentials as exc:
                form.add_error(None, str(exc.message))
                status = 400
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect(_next(request))
        else:
            status = 400
    context = {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}
    response = render(request, "web/signin.html", context, status=status)
    for key, value in response_headers.items():
        response[key] = value
    return response


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect(reverse("web:signin"))


def home(request: HttpRequest) -> HttpResponse:
    """`/`: the first portfolio's overview, the sign-in page for a visitor."""
    if not request.user.is_authenticated:
        return signin(request)
    return _home(request)


@signed_in
def _home(request: HttpRequest) -> HttpResponse:
    portfolios = portfolios_of(request)
    if not portfolios:
        return render(request, "web/empty.html", {"portfolios": [], "section": "overview"})
    return redirect(reverse("web:overview", args=[portfolios[0]["id"]]))
