"""Parley settings: everything comes from the environment (see crm/env.py and the README)."""

from __future__ import annotations

from pathlib import Path

from crm.env import (
    check_production,
    database_from_url,
    dev_secrets,
    env_bool,
    env_int,
    env_list,
    env_str,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent
PARLEY_ENV = env_str("PARLEY_ENV", "embedded")
PRODUCTION = PARLEY_ENV == "production"
if PARLEY_ENV not in {"embedded", "production"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"PARLEY_ENV must be 'embedded' or 'production', got {PARLEY_ENV!r}."
    )
if PRODUCTION:
    check_production()

DATA_DIR = Path(env_str("PARLEY_DATA_DIR", str(BASE_DIR / "var")))
_dev = None if (env_str("SECRET_KEY") and env_str("FERNET_KEYS")) else dev_secrets(DATA_DIR)

SECRET_KEY = env_str("SECRET_KEY") or _dev["SECRET_KEY"]
FERNET_KEYS = env_list("FERNET_KEYS") or [_dev["FERNET_KEY"]]
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "crm",
    "accounts",
    "sessions_app",
    "messaging",
    "campaigns",
    "autoreply",
]

MIDDLEWARE = [
    "crm.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "crm.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "crm.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "crm.middleware.ErrorPageMiddleware",  # inside CommonMiddleware: its slash redirect stays
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
ASGI_APPLICATION = "crm.asgi.application"

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
                "accounts.tenancy.context",
                "sessions_app.context.needs_pairing",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL, pool=env_bool("DATABASE_POOL", True))}
else:
    DATABASES = {"default": sqlite_database(DATA_DIR / "parley.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, channel layer ---------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "parley"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "parley")},
        }
    }
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "crm.channel_layer.ThreadSafeInMemoryChannelLayer"}}
    # The in-process broker. It takes no host, but kombu's virtual transports default one
    # ("localhost") and warn "No hostname was supplied" each time a pooled connection is made
    # from a URL without one (the first task a process sends): so the URL names it.
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://localhost/")

CELERY_TASK_IGNORE_RESULT = True
# Celery closes a worker's database connections around every task, pool and all, unless told to
# keep them: a drain task a tenth of a second made a PostgreSQL connection each (14 a second
# under 100 webhooks a second, bench/inbound_topology.py). Kept for this many tasks, then renewed.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 200)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task a killed worker had claimed comes back after the visibility timeout; so does any task
# still running or waiting (a countdown) past it. Hence every task's time limit is below it and
# every countdown under half of it (``PARLEY_MAX_COUNTDOWN``; longer waits live in the database,
# picked up by beat). Tasks that run longer (imports, bulk actions) claim their job in the
# database, so a redelivered copy finds it taken and returns.
PARLEY_VISIBILITY_TIMEOUT = env_int("PARLEY_VISIBILITY_TIMEOUT", 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": PARLEY_VISIBILITY_TIMEOUT}
CELERY_TASK_TIME_LIMIT = PARLEY_VISIBILITY_TIMEOUT - 5
CELERY_TASK_SOFT_TIME_LIMIT = PARLEY_VISIBILITY_TIMEOUT - 10
PARLEY_MAX_COUNTDOWN = PARLEY_VISIBILITY_TIMEOUT // 2 - 5  # seconds
PARLEY_LONG_TASK_TIME_LIMIT = env_int("PARLEY_LONG_TASK_TIME_LIMIT", 3600)
if CELERY_BROKER_URL.startswith("memory://"):
    # The in-process broker is polled (default: every second); a task queued by a request in
    # embedded mode should start at once.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "parley")
CELERY_TIMEZONE = "UTC"
PARLEY_HEARTBEAT_SECONDS = env_int("PARLEY_HEARTBEAT_SECONDS", 15)
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "crm.tasks.heartbeat",
        "schedule": float(PARLEY_HEARTBEAT_SECONDS),
    },
    "messaging-fail-stale-jobs": {"task": "messaging.tasks.fail_stale_jobs", "schedule": 300.0},
    "accounts-expire-invitations": {
        "task": "accounts.tasks.expire_invitations",
        "schedule": 3600.0,
    },
    "sessions-drain-webhooks": {"task": "sessions_app.tasks.drain_webhooks", "schedule": 30.0},
    "sessions-tick": {"task": "sessions_app.tasks.sessions_tick", "schedule": 5.0},
    "sessions-check": {"task": "sessions_app.tasks.sessions_check", "schedule": 300.0},
    "messaging-outbox-tick": {"task": "messaging.tasks.outbox_tick", "schedule": 5.0},
    "sessions-prune-webhooks": {"task": "sessions_app.tasks.prune_webhooks", "schedule": 3600.0},
}

# --- Storage -------------------------------------------------------------------------------------
S3_BUCKET = env_str("S3_BUCKET")
if PRODUCTION and not S3_BUCKET:
    check_production(("S3_BUCKET",))
if S3_BUCKET:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL"),
            "region_name": env_str("S3_REGION", "us-east-1"),
            "access_key": env_str("S3_ACCESS_KEY_ID"),
            "secret_key": env_str("S3_SECRET_ACCESS_KEY"),
            "addressing_style": env_str("S3_ADDRESSING_STYLE", "path"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "media")},
    }
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("STATIC_MANIFEST", PRODUCTION)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
STATIC_URL = "/static/"
# Collected files exist only where collectstatic ran (the image); embedded mode serves from finders.
STATIC_ROOT = BASE_DIR / "staticfiles" if env_bool("STATIC_MANIFEST", PRODUCTION) else None
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = DATA_DIR / "media"

# --- Auth ----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PARLEY_SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", True)
PARLEY_INVITATION_DAYS = env_int("INVITATION_DAYS", 7)
PARLEY_LOGIN_MAX_FAILURES_PER_ACCOUNT = env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
PARLEY_LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 20)
PARLEY_LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)
PARLEY_DEFAULT_COUNTRY = env_str("DEFAULT_COUNTRY", "US")

# --- Email ---------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Parley <noreply@parley.invalid>")

# --- i18n ----------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.tenancy.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "crm.api.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "crm.schema.AutoSchema",
    "EXCEPTION_HANDLER": "crm.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["crm.api.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Parley API",
    "DESCRIPTION": "The Parley REST API. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Descriptions come from each view's and serializer's own docstring, never a base class's.
    "GET_LIB_DOC_EXCLUDES": "crm.schema.schema_doc_excludes",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crm.schema.document_errors",
    ],
    # One name per choice set shared by several fields.
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "sessions_app.models.SessionStatus",
        "SessionProviderEnum": "sessions_app.models.ProviderName",
        "ContactStatusEnum": "messaging.models.ContactStatus",
        "SimulateActionEnum": ["scan", "inbound", "fault"],
        "BulkActionEnum": "messaging.models.BulkAction",
        "MessageStatusEnum": "messaging.models.MessageStatus",
        "ChatStatusEnum": "messaging.models.ChatStatus",
        "ChatKindEnum": "messaging.models.ChatKind",
        "IdentityKindEnum": "messaging.models.IdentityKind",
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
# Request bodies (crm/uploads.py): every route reads at most PARLEY_REQUEST_MAX_BYTES; the routes
# that take files read up to their own cap, and only for a signed-in member or an API key.
PARLEY_REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE + 64 * 1024)
PARLEY_IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 200 * 1024 * 1024)  # a contacts file
# A file sent to a chat: the largest document WhatsApp takes (100 MB), plus the form around it.
PARLEY_MEDIA_MAX_BYTES = 100 * 1024 * 1024 + 64 * 1024
# A background job still running after this long lost its worker (messaging/services/watchdog.py).
PARLEY_JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 2 * 3600)

# --- WhatsApp providers --------------------------------------------------------------------------
# Base URLs by provider (gateways default to the server URL in each session's credentials).
PARLEY_PROVIDER_URLS = {"cloud_api": env_str("META_GRAPH_URL", "https://graph.facebook.com/v21.0")}
PARLEY_PROVIDER_TIMEOUT = env_int("PROVIDER_TIMEOUT_SECONDS", 15)
# Meta's app secret for the installation-wide Cloud API webhook URL (/webhooks/cloud_api/).
META_APP_SECRET = env_str("META_APP_SECRET")
META_VERIFY_TOKEN = env_str("META_VERIFY_TOKEN")
# Webhook bodies can be large (a history sync): read up to this many bytes, refuse beyond.
PARLEY_WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 64 * 1024 * 1024)
# Failed and unreadable webhooks are kept this many days for inspection (applied ones: each
# organization's webhook_retention_days; sessions_app/retention.py), never fewer than those.
PARLEY_WEBHOOK_FAILED_RETENTION_DAYS = env_int("WEBHOOK_FAILED_RETENTION_DAYS", 30)
if PARLEY_WEBHOOK_FAILED_RETENTION_DAYS < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("WEBHOOK_FAILED_RETENTION_DAYS must be at least 1.")

# --- Security ------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    if env_bool("BEHIND_TLS_PROXY", False):
        # Only behind a proxy that sets this header itself and strips it from clients.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
