"""Settings, read from the environment.

Embedded defaults (no environment at all): SQLite in var/, tasks run eagerly in-process,
a local-memory cache, keys generated once into var/dev-keys.json. Production (CDP_ENV=production)
refuses to start without key material and turns on the secure-transport settings that
`manage.py check --deploy` asks for.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

from cdp.keys import load_key_material

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CDP_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()

CDP_ENV = env.str("CDP_ENV", default="development")
if CDP_ENV not in {"development", "production"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CDP_ENV must be 'development' or 'production'")
PRODUCTION = CDP_ENV == "production"

KEYS = load_key_material(
    production=PRODUCTION,
    environ=dict(os.environ),
    dev_key_file=Path(os.environ.get("CDP_DEV_KEY_FILE", VAR_DIR / "dev-keys.json")),
)
SECRET_KEY = KEYS.secret_key

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "privacy",
    "cdp",
    "identity",
    "consent",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "cdp.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cdp.urls"
WSGI_APPLICATION = "cdp.wsgi.application"
ASGI_APPLICATION = "cdp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'cdp.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so two writers queue instead of
    # deadlocking on a lock upgrade; the timeout lets them wait for each other.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 30})
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / "test-cdp.sqlite3")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cdp"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Session cookies are short-lived: the customer portal and the staff pages hold personal data.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=30 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Bodies up to the ingestion limit (1 MiB of messages) plus envelope; larger bodies get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_RATE_LIMIT", default="6000/min")},
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Privacy-first CDP API",
    "DESCRIPTION": (
        "Customer data platform for PIPL and GDPR. Authenticate with `Authorization: Bearer <key>`; "
        "keys are created with `python manage.py create_api_key --role ROLE --name NAME`. Every "
        'error is JSON: `{"error": {"code", "message", "details"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: without a broker every task runs eagerly in-process (the embedded default).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# Audit trail (privacy.audit): how often beat signs the chain's head, and public keys (hex) of
# retired checkpoint-signing keys whose checkpoints verification still trusts.
CDP_AUDIT_CHECKPOINT_SECONDS = env.int("CDP_AUDIT_CHECKPOINT_SECONDS", default=600)
CDP_AUDIT_TRUSTED_PUBLIC_KEYS = env.list("CDP_AUDIT_TRUSTED_PUBLIC_KEYS", default=[])
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "privacy.audit_checkpoint",
    "schedule": float(CDP_AUDIT_CHECKPOINT_SECONDS),
}
CELERY_BEAT_SCHEDULE["audit-verify"] = {"task": "privacy.audit_verify", "schedule": 24 * 3600.0}

# Identity and ingestion tuning (documented in docs/architecture.md).
CDP_DEFAULT_PHONE_REGION = env.str("CDP_DEFAULT_PHONE_REGION", default="CN")
CDP_INGEST_MAX_MESSAGES = env.int("CDP_INGEST_MAX_MESSAGES", default=1000)
CDP_INGEST_MAX_BYTES = env.int("CDP_INGEST_MAX_BYTES", default=1024 * 1024)
CDP_DATA_KEY_CACHE_SIZE = env.int("CDP_DATA_KEY_CACHE_SIZE", default=4096)
# Dotted path to a factory(KeyMaterial) -> Kms for a cloud KMS or HSM; empty: LocalKms (docs/security.md).
CDP_KMS_FACTORY = env.str("CDP_KMS_FACTORY", default="")
# Identity resolution (docs/identity.md): junk identifier values refused with a reason; per-type
# overrides of the identifier registry (identity/registry.py), e.g. {"email": {"max_per_profile": 5}};
# what happens to traits/properties missing from the registry: "reject" the message or "quarantine"
# them (sealed, kept out of the profile).
CDP_JUNK_IDENTIFIERS = env.list(
    "CDP_JUNK_IDENTIFIERS",
    default=["null", "undefined", "none", "nil", "nan", "0", "-1", "anonymous", "unknown", "test", "n/a", ""],
)
CDP_IDENTIFIER_TYPES: dict[str, dict] = {}
CDP_INGEST_UNKNOWN_KEYS = env.str("CDP_INGEST_UNKNOWN_KEYS", default="reject")
if CDP_INGEST_UNKNOWN_KEYS not in {"reject", "quarantine"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CDP_INGEST_UNKNOWN_KEYS must be 'reject' or 'quarantine'")
# Queued batches (POST /api/v1/ingest/batches, docs/identity.md): how long their results stay
# pollable, when a batch still queued is handed to the broker again, and how often a worker tries.
CDP_INGEST_BATCH_RETENTION_DAYS = env.int("CDP_INGEST_BATCH_RETENTION_DAYS", default=7)
CDP_INGEST_REQUEUE_AFTER_SECONDS = env.int("CDP_INGEST_REQUEUE_AFTER_SECONDS", default=300)
CDP_INGEST_MAX_ATTEMPTS = env.int("CDP_INGEST_MAX_ATTEMPTS", default=3)
CELERY_BEAT_SCHEDULE["ingest-queue"] = {"task": "cdp.ingest_queue_maintenance", "schedule": 300.0}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Consent (docs/adr/0005-consent-ledger.md). Age below which a guardian must consent: per
# country when the profile's country is known, else per jurisdiction (PIPL Art. 31: 14;
# GDPR Art. 8: 16 unless a member state lowered it, down to 13).
CDP_CONSENT_MINOR_AGE = {"pipl": 14, "gdpr": 16}
CDP_CONSENT_MINOR_AGE_BY_COUNTRY = {
    "CN": 14, "AT": 14, "BE": 13, "BG": 14, "CY": 14, "CZ": 15, "DE": 16, "DK": 13, "EE": 13, "ES": 14,
    "FI": 13, "FR": 15, "GR": 15, "HR": 16, "HU": 16, "IE": 16, "IT": 14, "LT": 14, "LU": 16, "LV": 13,
    "MT": 13, "NL": 16, "PL": 16, "PT": 13, "RO": 16, "SE": 13, "SI": 15, "SK": 16,
}  # fmt: skip
# Portal links: how long a link stays valid before it is used (minutes).
CDP_PORTAL_LINK_TTL_MINUTES = env.int("CDP_PORTAL_LINK_TTL_MINUTES", default=72 * 60)
# Public origin of the portal in issued links (e.g. https://privacy.example.com); empty: the API host.
CDP_PORTAL_BASE_URL = env.str("CDP_PORTAL_BASE_URL", default="")
# Data-subject request deadlines by jurisdiction (GDPR Art. 12(3); PIPL common practice).
CDP_DSAR_DEADLINES = {"gdpr": {"months": 1}, "pipl": {"working_days": 15}}
CDP_DSAR_DEFAULT_JURISDICTION = env.str("CDP_DSAR_DEFAULT_JURISDICTION", default="pipl")

# Data-subject requests and retention (issue 9): extension (GDPR Art. 12(3)), warning window,
# package lifetime; the event data category whose purposes' retention_days bound events.
CDP_DSAR_EXTENSION_MONTHS = env.int("CDP_DSAR_EXTENSION_MONTHS", default=2)
CDP_DSAR_WARN_DAYS = env.int("CDP_DSAR_WARN_DAYS", default=5)
CDP_DSAR_PACKAGE_TTL_HOURS = env.int("CDP_DSAR_PACKAGE_TTL_HOURS", default=72)
CDP_RETENTION_EVENT_CATEGORY = env.str("CDP_RETENTION_EVENT_CATEGORY", default="transaction")
CELERY_BEAT_SCHEDULE["dsar-deadlines"] = {"task": "privacy.dsar_deadlines", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["dsar-packages-expire"] = {"task": "privacy.dsar_packages_expire", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["retention-purge"] = {"task": "privacy.retention_purge", "schedule": 24 * 3600.0}
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["DsarChannelEnum"] = "privacy.dsar.models.DsarChannel"
# Differential privacy (privacy.dp; docs/privacy.md). Epsilon per period per analyst (API key)
# and per dataset (global cap across analysts); the period is day, week, month, quarter or year.
CDP_DP_DATASETS = env.list("CDP_DP_DATASETS", default=["customers"])
CDP_DP_DEFAULT_DATASET = CDP_DP_DATASETS[0]
# The purpose DP populations are filtered by (consent.enforcement): only people that purpose
# allows are ever counted. With a consent basis (the seeded default) that means a current grant.
CDP_DP_PURPOSE = env.str("CDP_DP_PURPOSE", default="analytics")
CDP_DP_PERIOD = env.str("CDP_DP_PERIOD", default="month")
CDP_DP_ANALYST_EPSILON = env.float("CDP_DP_ANALYST_EPSILON", default=10.0)
CDP_DP_DATASET_EPSILON = env.float("CDP_DP_DATASET_EPSILON", default=50.0)
CDP_DP_ANALYST_EPSILON_OVERRIDES: dict[str, float] = {}  # actor_id -> epsilon per period
CDP_DP_EPSILON_MIN = env.float("CDP_DP_EPSILON_MIN", default=0.01)
CDP_DP_EPSILON_MAX = env.float("CDP_DP_EPSILON_MAX", default=5.0)
CDP_DP_MAX_ROWS_PER_PERSON = env.int("CDP_DP_MAX_ROWS_PER_PERSON", default=10)
CDP_DP_MAX_ROWS_LIMIT = env.int("CDP_DP_MAX_ROWS_LIMIT", default=100)
CDP_DP_DECIMAL_SCALE = env.int("CDP_DP_DECIMAL_SCALE", default=100)  # decimals are summed in 1/100 units

# Segments (issue 8): scheduled refresh, export lifetime, and the epsilon an export's DP
# exclusion count costs the requester (documented in docs/segments.md).
CDP_SEGMENT_REFRESH_SECONDS = env.int("CDP_SEGMENT_REFRESH_SECONDS", default=3600)
CDP_SEGMENT_EXPORT_TTL_SECONDS = env.int("CDP_SEGMENT_EXPORT_TTL_SECONDS", default=24 * 3600)
CDP_SEGMENT_EXCLUSION_EPSILON = env.float("CDP_SEGMENT_EXCLUSION_EPSILON", default=0.1)
CELERY_BEAT_SCHEDULE["segments-refresh"] = {
    "task": "cdp.segments_refresh",
    "schedule": float(CDP_SEGMENT_REFRESH_SECONDS),
}

# --- compliance operations (issue 10) -----------------------------------------------------------
# Countries where the platform processes; a recipient elsewhere is a cross-border one (PIPL Art. 38).
CDP_HOME_COUNTRIES = env.list("CDP_HOME_COUNTRIES", default=["CN"])
CDP_BREACH_NOTIFY_HOURS = env.int("CDP_BREACH_NOTIFY_HOURS", default=72)  # GDPR Art. 33(1)
CDP_BREACH_NEAR_HOURS = env.int("CDP_BREACH_NEAR_HOURS", default=24)
CDP_CONTROLLER_NAME = env.str("CDP_CONTROLLER_NAME", default="The brand (personal-information handler)")
CDP_PRIVACY_CONTACT = env.str("CDP_PRIVACY_CONTACT", default="privacy@example.com")
# Purposes that need an impact assessment besides those with a separate-consent kind (PIPL Art. 55(2)).
CDP_ASSESSMENT_PURPOSES = env.list("CDP_ASSESSMENT_PURPOSES", default=["personalisation"])
CDP_ASSESSMENT_RETENTION_YEARS = env.int("CDP_ASSESSMENT_RETENTION_YEARS", default=3)  # PIPL Art. 56
CELERY_BEAT_SCHEDULE["breach-deadlines"] = {"task": "privacy.breach_deadlines", "schedule": 900.0}
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["RecipientRoleEnum"] = (
    "privacy.compliance.models.RecipientRole"
)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["TransferMechanismEnum"] = "privacy.compliance.models.TransferMechanism"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["BreachStatusEnum"] = "privacy.compliance.models.BreachStatus"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["ApiKeyRoleEnum"] = "api.models.API_ROLES"
