"""Account writes: users and token issuance."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from sigmasight.accounts.models import User, normalize_email
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import DomainError, ValidationFailed

logger = logging.getLogger("sigmasight.auth")

DUPLICATE_EMAIL = "A user with this email already exists."


class InvalidCredentials(DomainError):
    status_code = 401
    default_code = "invalid_credentials"


def user_create(*, email: str, password: str, full_name: str) -> User:
    """Create a user, or raise ValidationFailed with field messages (a password the rules refuse,
    an email in use). Registration (portfolios.services.user_register) adds their portfolio."""
    email = normalize_email(email)
    candidate = User(email=email, full_name=full_name)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "The password is not acceptable.", fields={"password": list(exc.messages)}
        ) from exc
    if User.objects.filter(email=email).exists():
        raise ValidationFailed(DUPLICATE_EMAIL, fields={"email": [DUPLICATE_EMAIL]})
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, full_name=full_name)
    except IntegrityError as exc:  # a concurrent registration of the same email won the race
        raise ValidationFailed(DUPLICATE_EMAIL, fields={"email": [DUPLICATE_EMAIL]}) from exc
    logger.info("user registered", extra={"user_id": user.pk})
    return user


def user_sign_in(*, email: str, password: str, request=None) -> User:
    """The user with this email and password, the attempt logged and audited (the API's token
    login and the pages' session sign-in). Unknown email and wrong password give the same error."""
    user = authenticate(request, email=normalize_email(email), password=password)
    if user is None:
        logger.info("login failed")
        audit_record("auth.login_failed", request=request, actor_email=normalize_email(email))
        raise InvalidCredentials("Email or password is incorrect.")
    update_last_login(type(user), user)
    logger.info("login succeeded", extra={"user_id": user.pk})
    audit_record("auth.login", request=request, actor=user)
    return user


def tokens_issue(*, email: str, password: str, request=None) -> dict[str, object]:
    """Log in by email and password: a token pair."""
    user = user_sign_in(email=email, password=password, request=request)
    refresh = RefreshToken.for_user(user)
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "bearer",
        "expires_in": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    }


def token_revoke(*, user: User, refresh: str) -> None:
    """Blacklist the caller's own refresh token (logout)."""
    message = "Token is invalid, expired or already revoked."
    try:
        # simplejwt annotates this argument as its Token class; it takes the encoded token.
        token = RefreshToken(refresh)  # type: ignore[arg-type]
    except TokenError as exc:
        raise ValidationFailed(
            message, code="token_not_valid", fields={"refresh": [message]}
        ) from exc
    if str(token.get("user_id")) != str(user.pk):
        raise ValidationFailed(message, code="token_not_valid", fields={"refresh": [message]})
    token.blacklist()
    logger.info("logout", extra={"user_id": user.pk})
