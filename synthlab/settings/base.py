"""Settings for every environment. The embedded default (no DATABASE_URL, no REDIS_URL) is SQLite,
a filesystem broker and the in-memory channel layer; production sets both URLs."""

import secrets
import sys

import dj_database_url

from .env import BASE_DIR, ENV

DEBUG = ENV.debug
DATA_DIR = ENV.data_dir
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if ENV.secret_key:
        return ENV.secret_key
    # Embedded default: a key generated once and kept in the data folder, never a shared constant.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "template_partials",
    "channels",
    "annotation",
    "generation",
]

if sys.argv[1:2] == ["runserver"]:
    # Daphne's runserver serves the websockets in development. Only there: as an app it imports
    # Twisted into every process (uvicorn and Celery workers, export helpers), 25 MB of memory each.
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "synthlab.middleware.HtmxVaryMiddleware",
]

ROOT_URLCONF = "synthlab.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "synthlab.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database -------------------------------------------------------------------------------------
if ENV.database_url:
    DATABASES = {"default": dj_database_url.parse(ENV.database_url, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Connections are per thread and requests run on a pool of threads (asgi_handler), each
        # giving its connection back when the request ends; a pool per process hands warm
        # connections out again instead of opening one (~ms, cold caches) per request. Keep
        # max_size above SYNTHLAB_REQUEST_THREADS so no request thread waits for a connection.
        DATABASES["default"].update(CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 20}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "synthlab.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock when a transaction starts, so two requests claiming
                # review tasks are serialised instead of failing with "database is locked" mid-way.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Broker, workers and the channel layer ----------------------------------------------------------
REDIS_URL = ENV.redis_url
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    _broker_dir = DATA_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"generation.tasks.*": {"queue": "gpu"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False

# Auth -------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:project_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Files ------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
MEDIA_ROOT = ENV.media_dir or str(DATA_DIR / "media")
MEDIA_URL = "/media/"
MODEL_CACHE_DIR = ENV.model_cache_dir or str(DATA_DIR / "models")
EXPORT_DIR = str(DATA_DIR / "exports")
MAX_UPLOAD_BYTES = ENV.max_upload_mb * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Import limits: a single item's text may not exceed this many characters.
SYNTHLAB_MAX_TEXT_CHARS = 200_000

# API --------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "synthlab.authentication.FastTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "synthlab.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "synthlab.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SynthLab API",
    "DESCRIPTION": "Import items, push candidates, review, pull annotations and exports.",
    "VERSION": "1.0.0",
    # Jobs, model tests and exports each have a "status"; name the choice sets apart.
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "generation.models.JobStatus"},
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Review queue: how long a leased task is held for one reviewer before it returns to the queue.
SYNTHLAB_LEASE_SECONDS = 15 * 60
# Threads per server process that run requests (synthlab/asgi_handler.py): at most this many
# requests of one process are in views at once; the rest wait their turn on the event loop.
SYNTHLAB_REQUEST_THREADS = ENV.request_threads

# Webhooks: private/loopback targets are refused (SSRF guard) unless explicitly allowed.
SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE = ENV.webhooks_allow_private
SYNTHLAB_WEBHOOK_MAX_ATTEMPTS = 6
SYNTHLAB_WEBHOOK_RETRY_BASE_SECONDS = 30  # then 60, 120, 240, 480
SYNTHLAB_WEBHOOK_TIMEOUT_SECONDS = 10
