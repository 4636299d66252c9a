"""Settings from the environment, the deploy check and the OpenAPI schema."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from sigmasight.env import env_bool, env_int, env_list, env_rate
from sigmasight.logging import JsonFormatter
from sigmasight.settings import base
from sigmasight.tests.helpers import PRODUCTION_ENV, manage


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("on", True), ("no", False), ("0", False)]
)
def test_env_bool_parses_strictly(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG", not expected) is expected


@pytest.mark.parametrize("junk", ["maybe", "ture", "2", "yes please"])
def test_env_bool_junk_raises(monkeypatch, junk):
    monkeypatch.setenv("SOME_FLAG", junk)
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)


def test_env_bool_unset_or_blank_uses_default(monkeypatch):
    monkeypatch.delenv("SOME_FLAG", raising=False)
    assert env_bool("SOME_FLAG", True) is True
    monkeypatch.setenv("SOME_FLAG", "  ")
    assert env_bool("SOME_FLAG", False) is False


def test_env_int_list_and_rate(monkeypatch):
    monkeypatch.setenv("N", "abc")
    with pytest.raises(ImproperlyConfigured):
        env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 5, minimum=1)
    monkeypatch.setenv("HOSTS", " a.example.com, ,b.example.com ")
    assert env_list("HOSTS") == ["a.example.com", "b.example.com"]
    monkeypatch.setenv("RATE", "100/fortnight")
    with pytest.raises(ImproperlyConfigured):
        env_rate("RATE", "100/min")
    monkeypatch.setenv("RATE", "20/min")
    assert env_rate("RATE", "100/min") == "20/min"


def test_junk_debug_value_stops_start_up():
    result = manage("check", env={"DEBUG": "sometimes", "SECRET_KEY": "x" * 60})
    assert result.returncode != 0
    assert "DEBUG='sometimes' is not a boolean" in result.stderr


def test_secret_key_required_when_debug_is_off():
    result = manage("check", env={"DEBUG": "false", "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_check_deploy_passes_with_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_insecure_production_settings():
    insecure = {**PRODUCTION_ENV, "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=insecure)
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
    assert "security.W008" in result.stderr + result.stdout


def test_production_hashes_passwords_with_argon2():
    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_logging_is_json_when_debug_is_off():
    assert base.LOG_FORMAT == "json"  # the test settings run with DEBUG off
    assert base.LOGGING["handlers"]["console"]["formatter"] == "json"
    for area in ("api", "db", "auth", "batch", "market_data"):
        assert f"sigmasight.{area}" in base.LOGGING["loggers"]


def test_json_formatter_writes_one_object_per_line_with_extras():
    record = logging.LogRecord(
        "sigmasight.batch", logging.INFO, __file__, 1, "ran %s", ("greeks",), None
    )
    record.portfolio_id = 7
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["message"] == "ran greeks"
    assert payload["logger"] == "sigmasight.batch"
    assert payload["level"] == "INFO"
    assert payload["portfolio_id"] == 7


@pytest.mark.django_db
def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for route in ("/api/v1/auth/login/", "/api/v1/auth/me/", "/api/v1/health/"):
        assert route in text
    assert "ErrorEnvelope" in text


@pytest.mark.django_db
def test_migrations_match_models():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
