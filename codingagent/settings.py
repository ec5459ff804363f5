"""One env-driven settings module for every environment.

Embedded defaults (SQLite, in-memory channel layer, local files, the offline
analyst) make ``make run`` work on a fresh machine; production sets
``DATABASE_URL``, ``REDIS_URL`` and ``S3_*`` (see ``.env.example``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from codingagent.lib.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)  # SQLite cannot create its folder on a fresh clone

DEBUG = env_bool("DEBUG", False)
_INSECURE_KEY = "django-insecure-codingagent-development-key-change-me"
SECRET_KEY = env_secret("SECRET_KEY", _INSECURE_KEY)
if not DEBUG and SECRET_KEY == _INSECURE_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (or set DEBUG=1 for local use).")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "channels",
    "template_partials.apps.SimpleAppConfig",
    "accounts",
    "projects",
    "analysis",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so it sees what views raise first: an unreachable database or Redis answers 503, not 500.
    "codingagent.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "codingagent.urls"
ASGI_APPLICATION = "codingagent.asgi.application"
WSGI_APPLICATION = None

_LOADERS = [
    "django.template.loaders.filesystem.Loader",
    "django.template.loaders.app_directories.Loader",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "codingagent.context_processors.csp_nonce",
            ],
            # django-template-partials registered by hand so the Django 6 upgrade only deletes lines.
            "builtins": ["template_partials.templatetags.partials"],
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    _LOADERS if DEBUG else [("django.template.loaders.cached.Loader", _LOADERS)],
                )
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the run worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "projects:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", False)
# Login attempts per client address (any email), and failed attempts per account (any address).
LOGIN_THROTTLE = env_str("LOGIN_THROTTLE", "10/min")
LOGIN_ACCOUNT_THROTTLE = env_str("LOGIN_ACCOUNT_THROTTLE", "10/15min")
# How many proxies of ours append to X-Forwarded-For; 0 (the default without BEHIND_PROXY) ignores the
# header, so a client cannot pick its own address for the login throttle or the audit log.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if BEHIND_PROXY else 0)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "CodingAgent <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"  # filled by `collectstatic` in the image; empty (finders serve) otherwise
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

# --- Redis: channel layer, cache (throttling), worker wake-ups and cancels -----------------------
REDIS_URL = env_str("REDIS_URL", "")
# Every Redis key and channel starts with this, so deployments can share one Redis (analysis/locks.py).
REDIS_PREFIX = env_str("REDIS_PREFIX", "codingagent")
# A websocket renews its group membership every third of this; a crashed consumer's entry lapses after it.
CHANNEL_GROUP_EXPIRY = env_int("CHANNEL_GROUP_EXPIRY", 300)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s socket timeout equals channels-redis' 5 s BRPOP: every quiet websocket
                # would read a timeout (and its consumer crash) after 5 s. The read timeout must exceed it.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
                "prefix": f"{REDIS_PREFIX}:channels:",
                "group_expiry": CHANNEL_GROUP_EXPIRY,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"group_expiry": CHANNEL_GROUP_EXPIRY}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Files: local folder by default, S3/MinIO when S3_BUCKET is set -----------------------------
S3_BUCKET = env_str("S3_BUCKET", "")
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_secret("S3_ACCESS_KEY"),
            "secret_key": env_secret("S3_SECRET_KEY"),
            "region_name": env_str("S3_REGION", "us-east-1"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "addressing_style": "path",
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "media"},
    }
# Production serves content-hashed, pre-compressed (gzip + brotli) static files, cached forever by browsers;
# they exist only after `collectstatic` (the image build), so DEBUG and the tests use the plain storage.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATASET_MAX_BYTES = env_int("DATASET_MAX_MB", 200) * 1024 * 1024

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Only the login endpoints are throttled (accounts/throttling.py); any DRF throttle added later sees the
    # same client address rule.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    # Tokens carry a hash of the password they were issued under: a change or reset ends them all.
    "CHECK_REVOKE_TOKEN": True,
    "SIGNING_KEY": SECRET_KEY,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CodingAgent API",
    "DESCRIPTION": "Projects, datasets, analysis sessions, runs and exports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["codingagent.lib.schema.drop_trailing_slash_twins"],
    # Swagger UI and ReDoc from the pinned drf-spectacular-sidecar package: the docs work offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "UserRoleEnum": "accounts.models.User.Role",
        "ProjectRoleEnum": "projects.models.ProjectMember.Role",
    },
}

# --- The agent and its sandbox -----------------------------------------------------------------
OPENROUTER_API_KEY = env_secret("OPENROUTER_API_KEY")
OPENROUTER_MODELS = env_list(
    "OPENROUTER_MODELS",
    ["anthropic/claude-sonnet-4.5", "openai/gpt-5", "google/gemini-2.5-pro", "deepseek/deepseek-chat"],
)
LLM_BASE_URL = env_str("LLM_BASE_URL", "")
LLM_API_KEY = env_secret("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL", "")
AGENT_MAX_TOOL_CALLS = env_int("AGENT_MAX_TOOL_CALLS", 8)
AGENT_RUN_TIMEOUT = env_int("AGENT_RUN_TIMEOUT", 600)
# Model/API failures (429, 5xx, timeouts, malformed tool calls): attempts per request, first backoff delay.
AGENT_MODEL_ATTEMPTS = env_int("AGENT_MODEL_ATTEMPTS", 4)
AGENT_RETRY_DELAY = env_int("AGENT_RETRY_DELAY_MS", 500) / 1000
SANDBOX_TIMEOUT = env_int("SANDBOX_TIMEOUT", 30)
SANDBOX_MEMORY_MB = env_int("SANDBOX_MEMORY_MB", 2048)
SANDBOX_ALLOW_WEAK = env_bool("SANDBOX_ALLOW_WEAK", False)
# Disk a session's workspace may hold (datasets and everything its code writes), enforced by the OS.
SANDBOX_DISK_MB = env_int("SANDBOX_DISK_MB", 1024)
# `sandbox_exec --no-policy` (plain Python behind the OS layers alone) is for red-team tests only.
SANDBOX_ALLOW_NO_POLICY = env_bool("SANDBOX_ALLOW_NO_POLICY", False)
# Artifacts one run may store, and the total MB of workspace files it may copy into storage.
SANDBOX_MAX_ARTIFACTS = env_int("SANDBOX_MAX_ARTIFACTS", 50)
SANDBOX_MAX_FILE_ARTIFACTS_MB = env_int("SANDBOX_MAX_FILE_ARTIFACTS_MB", 256)
# Static chart images are drawn in helper processes: CPU seconds and MB of memory per chart (beyond them the
# chart gets a placeholder saying why), and how many helpers draw at once per process.
CHART_DRAW_CPU_SECONDS = env_int("CHART_DRAW_CPU_SECONDS", 10)
CHART_DRAW_MEMORY_MB = env_int("CHART_DRAW_MEMORY_MB", 1024)
CHART_DRAW_PROCESSES = env_int("CHART_DRAW_PROCESSES", 2)
# Production refuses to run code when process/OS isolation is missing, unless the operator opts out.
SANDBOX_REQUIRE_ISOLATION = not DEBUG and not SANDBOX_ALLOW_WEAK
WORKSPACES_DIR = DATA_DIR / "workspaces"
RUN_HEARTBEAT_SECONDS = env_int("RUN_HEARTBEAT_SECONDS", 5)
RUN_STALE_SECONDS = env_int("RUN_STALE_SECONDS", 30)
# Runs one worker process drives at once (model waits and kernels overlap; see analysis/worker.py).
RUN_WORKER_CONCURRENCY = env_int("RUN_WORKER_CONCURRENCY", 16)
# Running runs per user; the claim leaves a user's further questions queued (fair share for everyone else).
RUN_MAX_ACTIVE_PER_USER = env_int("RUN_MAX_ACTIVE_PER_USER", 2)
# Live session kernels (variables) one worker keeps, how long an idle one lives, and their memory budget
# (PSS, all kernels of the worker together): past it the least recently used idle kernels are closed.
SANDBOX_MAX_KERNELS = env_int("SANDBOX_MAX_KERNELS", 32)
SANDBOX_IDLE_SECONDS = env_int("SANDBOX_IDLE_SECONDS", 900)
SANDBOX_KERNELS_MEMORY_MB = env_int("SANDBOX_KERNELS_MEMORY_MB", 8192)

# --- Security (``manage.py check --deploy`` is clean with DEBUG off) ----------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# CSRF_COOKIE_HTTPONLY stays off: htmx reads no cookie (the token is in <body hx-headers>), but Django's
# admin JavaScript does; the session cookie, the one worth stealing, is HttpOnly.

# Content-Security-Policy (django-csp) on every response. Scripts run only from our origin or with the
# per-request nonce (no 'unsafe-inline', no eval: htmx runs with allowEval off and no hx-on handlers).
# img-src has no remote hosts, so a chart's layout.images (or any model-written HTML) cannot make a
# viewer's browser fetch an outside URL. connect-src 'self' covers fetch/htmx and the same-origin
# websocket (CSP3 matches ws:/wss: for 'self'). Style *attributes* stay allowed: plotly.js and Swagger UI
# set them as they draw, and an attribute cannot run code; <style> elements still need the nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
