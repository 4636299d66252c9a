"""SigmaSight settings, read from the environment (see .env.example for every variable).

`DATABASE_URL` unset means a SQLite file in the data directory; `REDIS_URL` unset means Celery
runs tasks eagerly in-process and the cache is local memory. Outside DEBUG a missing
SECRET_KEY is an error, never a default.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

from sigmasight.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_optional,
    env_rate,
    env_str,
    env_tickers,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("SIGMASIGHT_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_optional("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "import_export",
    "django_htmx",
    "sigmasight.accounts",
    "sigmasight.audit",
    "sigmasight.outbox",
    "marketdata",
    "portfolios",
    "analytics",
    "stress",
    "modeling",
]

MIDDLEWARE = [
    # Outermost: every response (redirects and CORS preflights included) gets a request id and
    # one log line timed over the whole stack.
    "sigmasight.middleware.RequestLogMiddleware",
    # Request count and latency by route template for /metrics (sigmasight/metrics).
    "sigmasight.metrics.middleware.MetricsMiddleware",
    # JSON bodies over 1 KB gzip-compressed for clients that accept it (before anything else
    # touches the body, so it compresses the final one).
    "sigmasight.middleware.JSONGZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # Query parameters with NUL characters: 400 before any view (PostgreSQL text cannot hold NUL).
    "sigmasight.middleware.NulQueryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # request.htmx for the workbench's partial updates (modeling/web).
    "django_htmx.middleware.HtmxMiddleware",
]

# The workbench's sign-in page (`/` for a visitor).
LOGIN_URL = "web:signin"

ROOT_URLCONF = "sigmasight.urls"
WSGI_APPLICATION = "sigmasight.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database ---------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'sigmasight.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        # Keeping connections saves ~5x on request latency (DESIGN.md, performance facts).
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # WAL lets the web process read while a batch writes; IMMEDIATE avoids lock upgrades.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("DB_TIMEOUT_SECONDS", 20, minimum=1),
    }
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_TIMEOUT_SECONDS", 5, minimum=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache and Celery ---------------------------------------------------------------------------
REDIS_URL = env_optional("REDIS_URL")
_REDIS_TIMEOUT = env_int("REDIS_TIMEOUT_SECONDS", 2, minimum=1)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "sigmasight",
            "OPTIONS": {
                "socket_connect_timeout": _REDIS_TIMEOUT,
                "socket_timeout": _REDIS_TIMEOUT,
            },
        }
    }
else:
    # Shared by every process on the machine, so the API cache can be on without Redis
    # (sigmasight/filecache.py); keyed by the database's identity.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "KEY_FUNCTION": "sigmasight.filecache.make_key",
            "OPTIONS": {
                "MAX_ENTRIES": env_int("SIGMASIGHT_FILE_CACHE_ENTRIES", 20_000, minimum=100)
            },
        }
    }

CELERY_BROKER_URL = REDIS_URL or "memory://"
# Sending a task does not wait on the result channel (sigmasight/celery.py says why).
CELERY_RESULT_BACKEND = f"sigmasight.celery:RedisResultBackend+{REDIS_URL}" if REDIS_URL else None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "America/New_York"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": _REDIS_TIMEOUT,
    "socket_timeout": _REDIS_TIMEOUT,
}
# Project-level tasks: autodiscovery only scans installed apps, and `sigmasight` is not one.
CELERY_IMPORTS = ["sigmasight.tasks"]
# Workers send the batch's chunk tasks to this queue too (one queue per deployment by default).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
# After a Redis error (cache or broker) a process stops trying Redis for this long: requests use
# the local fallback and tasks wait in the outbox instead of each paying a connection attempt.
SIGMASIGHT_REDIS_RETRY_AFTER_S = env_float("SIGMASIGHT_REDIS_RETRY_AFTER_S", 5.0)
if not 0 < SIGMASIGHT_REDIS_RETRY_AFTER_S <= 300:
    raise ImproperlyConfigured("SIGMASIGHT_REDIS_RETRY_AFTER_S must be > 0 and <= 300 seconds.")
# Read endpoints serving stored results are cached this long (invalidated sooner by the batch and
# by writes to the book: sigmasight/api/caching.py); 0 turns the cache off. On with Redis and with
# the file cache alike: both are shared by every process, so a batch run in another process
# invalidates what this one cached.
SIGMASIGHT_API_CACHE_TTL_S = env_int("SIGMASIGHT_API_CACHE_TTL_S", 600, minimum=0)

# Auth ---------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("SIGMASIGHT_PASSWORD_MIN_LENGTH", 10, minimum=8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "sigmasight.accounts.validators.NoSurroundingWhitespaceValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
SIGMASIGHT_OPEN_REGISTRATION = env_bool("SIGMASIGHT_OPEN_REGISTRATION", False)
# Password of the demo accounts `manage.py seed_demo` creates (printed by it); demos only: set
# another one before seeding a server others can reach.
SIGMASIGHT_DEMO_PASSWORD = env_str("SIGMASIGHT_DEMO_PASSWORD", "open-risk-demo")

SIMPLE_JWT: dict[str, Any] = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 30, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": env_optional("JWT_SIGNING_KEY") or SECRET_KEY,
}

# API ----------------------------------------------------------------------------------------------
SIGMASIGHT_THROTTLE_USER = env_rate("SIGMASIGHT_THROTTLE_USER", "100/min")
SIGMASIGHT_THROTTLE_ANON = env_rate("SIGMASIGHT_THROTTLE_ANON", "200/min")
# Password guessing: login attempts per client IP and per attempted email, whatever the outcome.
SIGMASIGHT_THROTTLE_LOGIN_IP = env_rate("SIGMASIGHT_THROTTLE_LOGIN_IP", "20/min")
SIGMASIGHT_THROTTLE_LOGIN_EMAIL = env_rate("SIGMASIGHT_THROTTLE_LOGIN_EMAIL", "5/min")
# The client IP throttles count by: REMOTE_ADDR, or behind N trusted proxies the address the
# outermost one appended to X-Forwarded-For (a client-written header alone is never trusted).
# Default: one proxy when it terminates TLS for us (SECURE_PROXY_SSL_HEADER), else none.
SIGMASIGHT_NUM_PROXIES = env_int(
    "SIGMASIGHT_NUM_PROXIES", 1 if env_bool("SECURE_PROXY_SSL_HEADER", False) else 0, minimum=0
)
SIGMASIGHT_PAGE_SIZE = env_int("SIGMASIGHT_PAGE_SIZE", 50, minimum=1)
SIGMASIGHT_MAX_PAGE_SIZE = 500

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bodies are JSON (shared/API.md); the position upload declares its own multipart parser.
    "DEFAULT_PARSER_CLASSES": ["sigmasight.api.parsers.JSONObjectParser"],
    "DEFAULT_PAGINATION_CLASS": "sigmasight.api.pagination.StandardPagination",
    "PAGE_SIZE": SIGMASIGHT_PAGE_SIZE,
    "DEFAULT_FILTER_BACKENDS": [
        "sigmasight.api.query.StrictFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "sigmasight.api.throttling.UserThrottle",
        "sigmasight.api.throttling.AnonThrottle",
    ],
    "NUM_PROXIES": SIGMASIGHT_NUM_PROXIES,
    "EXCEPTION_HANDLER": "sigmasight.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "sigmasight.api.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # `?format=` belongs to the API (export/?format=csv), not to DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SigmaSight API",
    "DESCRIPTION": "Portfolio risk for long/short equity and options books.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sigmasight.api.schema.add_error_responses",
    ],
}

# Browser origins allowed to call the API: none unless listed (an allow-list, never a wildcard).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-request-id")
# Headers a browser script may read: file names, the throttle's wait, export and request ids.
CORS_EXPOSE_HEADERS = ["Content-Disposition", "Retry-After", "X-Export-Id", "X-Request-ID"]

# Security (secure by default outside DEBUG; each switch can be set from the environment) ------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# The platform's health probe and a scraper inside the private network speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$", r"^metrics$"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Uploads: the position CSV limit is 5 MB; requests a little larger are refused before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 6 * 1024 * 1024, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Every upload (API, admin imports) is counted while it is read and refused past this (413); the
# position CSV endpoint caps it at SIGMASIGHT_UPLOAD_MAX_BYTES.
SIGMASIGHT_FILE_UPLOAD_MAX_BYTES = env_int(
    "SIGMASIGHT_FILE_UPLOAD_MAX_BYTES", 100 * 1024 * 1024, minimum=1024
)
FILE_UPLOAD_HANDLERS = [
    "sigmasight.api.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Market data -------------------------------------------------------------------------------
# With POLYGON_API_KEY: Polygon for prices (yfinance for sectors, rates and fallback); without:
# the deterministic synthetic market, so everything runs offline. SOURCE forces one choice;
# csv: only the user's imported prices, never fetched or synthesized.
POLYGON_API_KEY = env_optional("POLYGON_API_KEY")
POLYGON_TIER = env_str("POLYGON_TIER", "free")
if POLYGON_TIER not in {"free", "starter", "developer", "advanced"}:
    raise ImproperlyConfigured(f"POLYGON_TIER={POLYGON_TIER!r} is not a Polygon plan tier.")
POLYGON_BASE_URL = env_str("POLYGON_BASE_URL", "https://api.polygon.io")
SIGMASIGHT_MARKET_DATA_SOURCE = env_str("SIGMASIGHT_MARKET_DATA_SOURCE", "auto")
if SIGMASIGHT_MARKET_DATA_SOURCE not in {"auto", "synthetic", "polygon", "yfinance", "csv"}:
    raise ImproperlyConfigured(
        f"SIGMASIGHT_MARKET_DATA_SOURCE={SIGMASIGHT_MARKET_DATA_SOURCE!r} must be one of auto, "
        "synthetic, polygon, yfinance, csv."
    )
if SIGMASIGHT_MARKET_DATA_SOURCE == "polygon" and not POLYGON_API_KEY:
    raise ImproperlyConfigured("SIGMASIGHT_MARKET_DATA_SOURCE=polygon needs POLYGON_API_KEY.")
SIGMASIGHT_MARKET_DATA_CONNECT_TIMEOUT = env_int(
    "SIGMASIGHT_MARKET_DATA_CONNECT_TIMEOUT", 5, minimum=1
)
SIGMASIGHT_MARKET_DATA_READ_TIMEOUT = env_int("SIGMASIGHT_MARKET_DATA_READ_TIMEOUT", 20, minimum=1)
# A web request that needs prices the cache lacks (a what-if trade on a new symbol) waits at most
# this long for the providers; past it the fetch finishes in the background (503, Retry-After).
SIGMASIGHT_WEB_PROVIDER_DEADLINE_S = env_float("SIGMASIGHT_WEB_PROVIDER_DEADLINE_S", 5.0)
if not 0 < SIGMASIGHT_WEB_PROVIDER_DEADLINE_S <= 60:
    raise ImproperlyConfigured("SIGMASIGHT_WEB_PROVIDER_DEADLINE_S must be > 0 and <= 60 seconds.")
SIGMASIGHT_YFINANCE_CACHE_DIR = DATA_DIR / "yfinance"
# Option roots whose contracts are European besides the cash-settled indices built in (SPX, NDX,
# RUT, XSP, DJX, VIX ...: marketdata.symbols.EUROPEAN_ROOTS); every other root is American.
SIGMASIGHT_EUROPEAN_UNDERLYINGS = env_tickers("SIGMASIGHT_EUROPEAN_UNDERLYINGS")
SIGMASIGHT_BACKFILL_CHUNK = env_int("SIGMASIGHT_BACKFILL_CHUNK", 50, minimum=1)
SIGMASIGHT_REFRESH_MAX_SYMBOLS = 2000

# The book ----------------------------------------------------------------------------------
SIGMASIGHT_MAX_TAGS_PER_USER = env_int("SIGMASIGHT_MAX_TAGS_PER_USER", 100, minimum=1)
SIGMASIGHT_MAX_TAGS_PER_POSITION = env_int("SIGMASIGHT_MAX_TAGS_PER_POSITION", 32, minimum=1)
SIGMASIGHT_UPLOAD_MAX_ROWS = env_int("SIGMASIGHT_UPLOAD_MAX_ROWS", 10_000, minimum=1)
SIGMASIGHT_UPLOAD_MAX_BYTES = env_int("SIGMASIGHT_UPLOAD_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)

# Analytics ----------------------------------------------------------------------------------
SIGMASIGHT_REALIZED_VOL_WINDOW = env_int("SIGMASIGHT_REALIZED_VOL_WINDOW", 63, minimum=10)
SIGMASIGHT_DEFAULT_VOLATILITY = env_float("SIGMASIGHT_DEFAULT_VOLATILITY", 0.30)
SIGMASIGHT_DEFAULT_RATE = env_float("SIGMASIGHT_DEFAULT_RATE", 0.045)
if not 0 < SIGMASIGHT_DEFAULT_VOLATILITY < 5 or not -0.05 < SIGMASIGHT_DEFAULT_RATE < 0.5:
    raise ImproperlyConfigured("SIGMASIGHT_DEFAULT_VOLATILITY / _RATE are decimals (0.30, 0.045).")
SIGMASIGHT_MAX_GREEKS_REQUEST = 10_000
# How the positions API (portfolios app) gets Greeks without importing analytics.
SIGMASIGHT_POSITION_GREEKS_PROVIDER = "analytics.selectors.latest_position_greeks"

# i18n and static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
SIGMASIGHT_MARKET_TIMEZONE = "America/New_York"

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"

# Logging: JSON lines in production, readable lines in development ------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level.")
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'text' or 'json'.")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "sigmasight.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        **{
            f"sigmasight.{area}": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
            for area in ("api", "db", "auth", "batch", "market_data", "request", "outbox")
        },
    },
}

# Factor model -------------------------------------------------------------------------------
SIGMASIGHT_FACTOR_WINDOW = env_int("SIGMASIGHT_FACTOR_WINDOW", 252, minimum=60)
SIGMASIGHT_FACTOR_MIN_OBSERVATIONS = env_int("SIGMASIGHT_FACTOR_MIN_OBSERVATIONS", 60, minimum=20)
SIGMASIGHT_BETA_CAP = env_float("SIGMASIGHT_BETA_CAP", 3.0)
# Style factors enter as residuals to the market (DESIGN.md); true uses raw ETF returns.
SIGMASIGHT_RAW_STYLE_FACTORS = env_bool("SIGMASIGHT_RAW_STYLE_FACTORS", False)
# Options' dollar factor exposure: "delta_adjusted" (DESIGN.md) or "dollar" (market value sign).
SIGMASIGHT_OPTION_FACTOR_EXPOSURE = env_str("SIGMASIGHT_OPTION_FACTOR_EXPOSURE", "delta_adjusted")
if SIGMASIGHT_OPTION_FACTOR_EXPOSURE not in {"delta_adjusted", "dollar"}:
    raise ImproperlyConfigured("SIGMASIGHT_OPTION_FACTOR_EXPOSURE is delta_adjusted or dollar.")
SIGMASIGHT_MONTE_CARLO_DRAWS = env_int("SIGMASIGHT_MONTE_CARLO_DRAWS", 10_000, minimum=1000)
SIGMASIGHT_EWMA_LAMBDA = env_float("SIGMASIGHT_EWMA_LAMBDA", 0.94)
SIGMASIGHT_SNAPSHOT_RETENTION_DAYS = env_int("SIGMASIGHT_SNAPSHOT_RETENTION_DAYS", 365, minimum=1)
# Sessions of position-level results kept (Greeks, factor exposures, IR betas, risk
# contributions): the evening's `retention` job deletes older ones (analytics/retention.py).
SIGMASIGHT_POSITION_RESULTS_RETENTION = env_int(
    "SIGMASIGHT_POSITION_RESULTS_RETENTION", 63, minimum=2
)
# Positions per chunk of a batch job. Every chunk reads again what its books share with the
# others (the underlyings' closes and prices, the factor returns, the session's scenarios):
# about 0.45 s per chunk over the evening at 10,000 positions, measured (bench_daily_batch's
# chunk-size table); 5,000 keeps that under a tenth of the evening and still gives two
# workers a chunk each at 10,000 positions. Lower it to spread a small evening over more
# worker processes.
SIGMASIGHT_BATCH_CHUNK_POSITIONS = env_int("SIGMASIGHT_BATCH_CHUNK_POSITIONS", 5000, minimum=1)
# BLAS/OpenMP threads of each Celery worker process (set by the worker at start, whatever the
# environment says): processes, not threads, use the cores (sigmasight/celery.py).
SIGMASIGHT_WORKER_BLAS_THREADS = env_int("SIGMASIGHT_WORKER_BLAS_THREADS", 1, minimum=1)
# Closes a worker process keeps for the session it is working on, reused across the chunks of
# every read-only job of that session (cells = sessions x symbols; about 8 bytes each).
SIGMASIGHT_WORKER_CLOSES_MAX_CELLS = env_int(
    "SIGMASIGHT_WORKER_CLOSES_MAX_CELLS", 5_000_000, minimum=0
)
# Megabytes of Monte Carlo revaluations of distinct option legs a process keeps under one set of
# draws (SIGMASIGHT_MONTE_CARLO_DRAWS x 8 bytes a contract): books holding the same contract share
# its repricing (analytics/montecarlo.py).
SIGMASIGHT_REVALUATION_MEMO_MB = env_int("SIGMASIGHT_REVALUATION_MEMO_MB", 128, minimum=0)
# Each job's chunks run as a Celery chord; a chunk gets its job's soft time limit in seconds (each
# app declares its jobs' limits: the plan's 5, 10, 15, 5, 5 and 10 minutes for market_data, greeks,
# factors, market_risk, snapshots and stress; SIGMASIGHT_BATCH_TIME_LIMIT_<JOB> overrides, a job
# that is not declared fails `manage.py check`) and is killed SIGMASIGHT_BATCH_HARD_GRACE_S later.
# Provider errors are retried with exponential backoff (full jitter, capped); nothing else is
# retried. A running job whose runner is gone (dead pid, no heartbeat) is taken over by the next
# run (README); SIGMASIGHT_BATCH_STALE_HOURS is the last resort for a runner on this host that is
# alive but has not beaten for that long (hung).
_TIME_LIMIT = "SIGMASIGHT_BATCH_TIME_LIMIT_"
SIGMASIGHT_BATCH_TIME_LIMITS = {
    name.removeprefix(_TIME_LIMIT).lower(): env_int(name, 1, minimum=1)
    for name in sorted(os.environ)
    if name.startswith(_TIME_LIMIT)
}
SIGMASIGHT_BATCH_HARD_GRACE_S = env_int("SIGMASIGHT_BATCH_HARD_GRACE_S", 60, minimum=1)
SIGMASIGHT_BATCH_RETRIES = env_int("SIGMASIGHT_BATCH_RETRIES", 3, minimum=0)
SIGMASIGHT_BATCH_RETRY_BACKOFF_S = env_float("SIGMASIGHT_BATCH_RETRY_BACKOFF_S", 30.0)
SIGMASIGHT_BATCH_RETRY_BACKOFF_MAX_S = env_float("SIGMASIGHT_BATCH_RETRY_BACKOFF_MAX_S", 600.0)
SIGMASIGHT_BATCH_STALE_HOURS = env_int("SIGMASIGHT_BATCH_STALE_HOURS", 6, minimum=1)

# Liquidity (risk/liquidity/) ------------------------------------------------------------------
# The share of a session's volume a position may trade while it is sold (a decimal; the API's
# `participation` overrides it per request), and the days to liquidate above which it is flagged.
SIGMASIGHT_LIQUIDITY_PARTICIPATION = env_float("SIGMASIGHT_LIQUIDITY_PARTICIPATION", 0.20)
if not 0 < SIGMASIGHT_LIQUIDITY_PARTICIPATION <= 1:
    raise ImproperlyConfigured("SIGMASIGHT_LIQUIDITY_PARTICIPATION is a decimal, 0 < p <= 1.")
SIGMASIGHT_LIQUIDITY_FLAG_DAYS = env_float("SIGMASIGHT_LIQUIDITY_FLAG_DAYS", 5.0)
if not 0 < SIGMASIGHT_LIQUIDITY_FLAG_DAYS <= 1000:
    raise ImproperlyConfigured("SIGMASIGHT_LIQUIDITY_FLAG_DAYS is sessions, > 0 and <= 1000.")

# What-if modeling -----------------------------------------------------------------------------
# FIX 4.4 trade export: SenderCompID (49) and TargetCompID (56) of every NewOrderSingle.
SIGMASIGHT_FIX_SENDER_COMP_ID = env_str("SIGMASIGHT_FIX_SENDER_COMP_ID", "SIGMASIGHT")
SIGMASIGHT_FIX_TARGET_COMP_ID = env_str("SIGMASIGHT_FIX_TARGET_COMP_ID", "BROKER")

# Limits and alerts (modeling/limits/) -----------------------------------------------------------
# A breach "worsens" (a new alert) when it moves further beyond the level it crosses by more than
# this share of |that level| since the user was last told (a decimal: 0.25 = 25%).
SIGMASIGHT_LIMIT_WORSEN_STEP = env_float("SIGMASIGHT_LIMIT_WORSEN_STEP", 0.25)
if not 0 < SIGMASIGHT_LIMIT_WORSEN_STEP <= 10:
    raise ImproperlyConfigured("SIGMASIGHT_LIMIT_WORSEN_STEP is a decimal share, > 0 and <= 10.")
# Alert delivery (modeling/limits/delivery.py): email through SMTP when EMAIL_HOST is set and
# DEBUG is off, otherwise printed on the console; webhooks (HTTPS, signed) refuse private,
# loopback and link-local addresses unless SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE is on (tests, a
# receiver on the same network). A failed delivery is retried SIGMASIGHT_ALERT_RETRIES times,
# backing off exponentially from SIGMASIGHT_ALERT_RETRY_BACKOFF_S up to ..._BACKOFF_MAX_S.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST and not DEBUG
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "SigmaSight <alerts@localhost>")
SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE = env_bool("SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE", False)
SIGMASIGHT_WEBHOOK_TIMEOUT_S = env_float("SIGMASIGHT_WEBHOOK_TIMEOUT_S", 10.0)
if not 0 < SIGMASIGHT_WEBHOOK_TIMEOUT_S <= 60:
    raise ImproperlyConfigured("SIGMASIGHT_WEBHOOK_TIMEOUT_S is seconds, > 0 and <= 60.")
# A CA bundle (PEM file) webhook certificates are verified against; unset: certifi's.
SIGMASIGHT_WEBHOOK_CA_BUNDLE = env_optional("SIGMASIGHT_WEBHOOK_CA_BUNDLE")
SIGMASIGHT_ALERT_RETRIES = env_int("SIGMASIGHT_ALERT_RETRIES", 5, minimum=0)
SIGMASIGHT_ALERT_RETRY_BACKOFF_S = env_int("SIGMASIGHT_ALERT_RETRY_BACKOFF_S", 30, minimum=1)
SIGMASIGHT_ALERT_RETRY_BACKOFF_MAX_S = env_int(
    "SIGMASIGHT_ALERT_RETRY_BACKOFF_MAX_S", 3600, minimum=1
)

# Metrics and error reporting ----------------------------------------------------------------
# /metrics answers only a bearer token or a client address in the allow-list (the address the
# throttles count by, SIGMASIGHT_NUM_PROXIES); with neither set it is a 404 for everyone.
SIGMASIGHT_METRICS_TOKEN = env_optional("SIGMASIGHT_METRICS_TOKEN")
if SIGMASIGHT_METRICS_TOKEN and not re.fullmatch(r"[!-~]{32,}", SIGMASIGHT_METRICS_TOKEN):
    raise ImproperlyConfigured(
        "SIGMASIGHT_METRICS_TOKEN must be at least 32 printable ASCII characters without spaces "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
    )
SIGMASIGHT_METRICS_ALLOWED_IPS = env_networks("SIGMASIGHT_METRICS_ALLOWED_IPS")
# Several processes (gunicorn workers, Celery workers on this host) write their samples to files
# here and a scrape sums them. prometheus_client reads the variable itself when it is imported,
# and takes it being present, even blank, as multiprocess mode: blank is refused.
if "PROMETHEUS_MULTIPROC_DIR" in os.environ and env_optional("PROMETHEUS_MULTIPROC_DIR") is None:
    raise ImproperlyConfigured("PROMETHEUS_MULTIPROC_DIR is blank: set a directory or unset it.")
_multiproc_dir = env_optional("PROMETHEUS_MULTIPROC_DIR")
PROMETHEUS_MULTIPROC_DIR = Path(_multiproc_dir) if _multiproc_dir else None
if PROMETHEUS_MULTIPROC_DIR is not None:
    PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)

# Errors go to Sentry only with a DSN; without one sentry_sdk is not even imported.
SENTRY_DSN = env_optional("SENTRY_DSN")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production")
SENTRY_RELEASE = env_optional("SENTRY_RELEASE")
if SENTRY_DSN:
    from sigmasight.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE)
