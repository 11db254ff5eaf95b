"""SecondRead settings: every value that can differ between machines comes from config.env.

The same module serves the embedded single-machine mode and production; the launcher
(``config/launcher.py``) only fills in ``DATABASE_URL`` and ``REDIS_URL`` when it starts the
embedded PostgreSQL and Redis, so both modes run the same code path.
"""

# long module: one settings module for every mode (STYLE.md: nothing only in production), read
# top to bottom in sections; splitting it would hide which value depends on which.

from __future__ import annotations

import ipaddress
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_optional,
    env_path,
    env_str,
    env_url,
)
from config.static import immutable_file_test

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = env_path("SR_DATA_DIR", BASE_DIR / ".data")

# "development" is the embedded single-machine mode; "production" refuses unsafe defaults.
SR_MODE = env_choice("SR_MODE", "development", ("development", "production"))
PRODUCTION = SR_MODE == "production"
DEBUG = env_bool("DEBUG", False)

_DEV_SECRET = "insecure-development-key-only-for-the-embedded-mode"  # noqa: S105 (refused in production)
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and (len(SECRET_KEY) < 40 or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured(
        "SR_MODE=production needs SECRET_KEY (or SECRET_KEY_FILE): a random value of 40+ characters."
    )

# The platform's own host name: the public site and the operator console live there, and
# every institution gets <slug>.<PLATFORM_DOMAIN> as its first domain.
PLATFORM_DOMAIN = env_str("PLATFORM_DOMAIN", "localhost").lower()
PLATFORM_PORT = env_optional("PLATFORM_PORT") or ("" if PRODUCTION else "8000")
PLATFORM_SCHEME = env_choice("PLATFORM_SCHEME", "https" if PRODUCTION else "http", ("http", "https"))

# Self-service onboarding: institutions that finish the wizard can set up and preview at once,
# but take patients (and payments) only once an operator approved them; off: live at once.
INSTITUTIONS_NEED_APPROVAL = env_bool("INSTITUTIONS_NEED_APPROVAL", True)
# Custom domains: the CNAME target institutions point their domain at, and the DNS servers
# (default: the system's resolver) used to verify the CNAME and the TXT token.
CUSTOM_DOMAIN_CNAME_TARGET = env_str("CUSTOM_DOMAIN_CNAME_TARGET", PLATFORM_DOMAIN).lower().rstrip(".")
DNS_RESOLVER_NAMESERVERS = env_list("DNS_RESOLVER_NAMESERVERS", [])
DNS_RESOLVER_PORT = env_int("DNS_RESOLVER_PORT", 53, minimum=1)
# Seconds a whole DNS lookup may take before the admin is told DNS cannot be reached.
DNS_RESOLVER_LIFETIME = 5.0

# Host validation is done per request by tenants.middleware.InstitutionMiddleware, which answers
# 404 to every host that is not a Domain row (the platform's or an institution's verified
# domain). Institutions add custom domains at run time, so a static list cannot hold them.
ALLOWED_HOSTS = ["*"]

# Reverse proxies whose X-Forwarded-For is believed (IP addresses or networks, comma-separated,
# e.g. "10.0.0.0/8" for the Caddy pods). Empty: nobody's; the connection's address is the
# client's (config.proxy).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network."
        ) from _error

DJANGO_APPS_SHARED = [
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Staff single sign-on through each institution's own identity provider (accounts.sso).
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]
LOCAL_SHARED_APPS = [
    "outbox",  # the platform's own emails (operators, sign-ups) leave from the public schema
    "tenants",
    "institutions",  # no models: the sign-up wizard, settings pages, operator console
    "branding",
    "accounts",
    "storage",
    "payments.connect",  # which Stripe account is whose, processed webhook events (public only)
]
LOCAL_TENANT_APPS = [
    "outbox",
    "audit",
    "accounts",
    "imaging",
    "intake",
    "review",
    "payments",
]

# Public schema: institutions, domains, branding, and the platform operators' own accounts.
SHARED_APPS = DJANGO_APPS_SHARED + THIRD_PARTY_APPS + LOCAL_SHARED_APPS
# Each institution's schema: its users (patients and staff), sessions, and all patient data.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    *THIRD_PARTY_APPS,
    *LOCAL_TENANT_APPS,
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Institution"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# The schema is set inside every statement by our backend (config.database), not per
# connection: safe behind PgBouncer in transaction mode, and no extra round trip.
TENANT_LIMIT_SET_CALLS = True
# Migrations of institution schemas: drafts skipped, all schemas checked in a few queries,
# the out-of-date ones migrated in parallel with per-schema progress (tenants.schema_migrations).
GET_EXECUTOR_FUNCTION = "tenants.schema_migrations.get_executor"
TENANT_MIGRATION_PROCESSES = env_int("TENANT_MIGRATION_PROCESSES", 4, minimum=1)
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
DEFAULT_NOT_FOUND_TENANT_VIEW = "tenants.views.unknown_host"

MIDDLEWARE = [
    # Outermost: every request is counted and timed, refusals and probes included.
    "config.metrics.MetricsMiddleware",
    # The client's address first, so everything after it (probes and access log included) sees it.
    "config.proxy.ClientAddressMiddleware",
    # /livez, /readyz, /healthz on any host, before the tenant lookup needs the database.
    "config.probes.ProbeMiddleware",
    "config.request_checks.MalformedQueryMiddleware",
    "tenants.middleware.InstitutionMiddleware",
    "tenants.middleware.InstitutionTimeZoneMiddleware",
    # Before FrameAncestorsMiddleware, so it sees that one's frame-ancestors on the way out.
    "config.csp.ContentSecurityPolicyMiddleware",
    # Before (so after, on the way out) XFrameOptionsMiddleware: per-institution embedding.
    "branding.middleware.FrameAncestorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the cookie set by the language switch, else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Staff and the platform in English; a patient's language remembered for their emails.
    "accounts.language.LanguageMiddleware",
    # Staff: a second factor before any patient data, and sign-out after inactivity.
    "review.middleware.StaffSecurityMiddleware",
    "tenants.middleware.InstitutionStatusMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # imaging/viewer is a package of the imaging app, not an app: its tags are named here.
            "libraries": {"sr_viewer": "imaging.viewer.templatetags"},
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",  # LANGUAGE_CODE, LANGUAGES
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "branding.context_processors.branding",
                "config.csp.csp_nonce",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql"))
if DATABASE_URL is None:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Start SecondRead with `./sr run` (it starts an embedded "
        "PostgreSQL) or point DATABASE_URL at a PostgreSQL server."
    )
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
if "host" in _db.get("OPTIONS", {}):  # a Unix socket folder, as the embedded server uses
    _db["HOST"] = _db["OPTIONS"].pop("host")
# django-tenants' backend with the schema carried by each statement (see config/database).
_db["ENGINE"] = "config.database"
_db["CONN_HEALTH_CHECKS"] = True
# Server-side cursors (DECLARE ... WITH HOLD) outlive a transaction, which a transaction-mode
# pooler cannot keep on one server connection; Django's docs say to turn them off there.
_db["DISABLE_SERVER_SIDE_CURSORS"] = True
# A database that does not answer (a failover under way, a network partition) fails a request or
# task within seconds, not after the operating system's TCP timeouts (minutes, or never once the
# handshake is done); a connection whose server vanished is noticed by TCP keepalives. Values
# given in DATABASE_URL's query string win.
_db["OPTIONS"] = {
    "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 5, minimum=1),
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    **_db.get("OPTIONS", {}),
}
DATABASES = {"default": _db}
# A connection that has served this many institutions' schemas is closed when its request or
# task ends: PostgreSQL never frees a backend's catalogue caches (about 0.5 MB per schema
# touched), so this bounds each backend's memory (docs/scaling.md has the connection budget).
# 0 turns it off.
DB_CONN_MAX_SCHEMAS = env_int("DB_CONN_MAX_SCHEMAS", 100, minimum=0)
# The application's own role, given to the migrate step (which connects as the owner, with
# DATABASE_URL): the owner creates it if missing and grants it read/write on every table but
# INSERT/SELECT only on the audit log (tenants.database_roles, `manage.py db_app_role`). Web and
# workers then connect with this URL as their DATABASE_URL. Unset: one role does everything
# (the embedded development mode).
DATABASE_APP_URL = env_url("DATABASE_APP_URL", ("postgres", "postgresql"))
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker and cache -------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
if REDIS_URL is None:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. Start SecondRead with `./sr run` (it starts an embedded Redis) "
        "or point REDIS_URL at a Redis server."
    )
CELERY_BROKER_URL = env_optional("CELERY_BROKER_URL") or (
    REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL.startswith("unix://") else REDIS_URL
)
CELERY_RESULT_BACKEND = env_optional("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
# Results are kept only for the tasks whose caller reads them (ignore_result=False on the task);
# 11,828 results nothing read were left in Redis at 1,000 institutions otherwise.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
# Every task has its own limits (soft: an exception the task may clean up after; hard: the
# worker process is replaced); these are for any task that would not.
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330
CELERY_TASK_ALWAYS_EAGER = False
# Every task is safe to run twice (each claims its work with a conditional UPDATE, or its
# effect is idempotent; tests run each twice): a task is acknowledged only once it finished,
# and one whose worker died (kill -9, out of memory) goes back to the queue.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task taken but not acknowledged within this time is given to another worker (Redis broker):
# longer than the longest task may run (ingest's hard limit is 1,860 s), or a slow task would
# run twice at once. Work left by a dead worker is resumed sooner by the sweeps.
# Also: a connection that hangs fails within seconds (never holds a request or a worker up).
_REDIS_SOCKETS = {"socket_connect_timeout": 3, "socket_timeout": 10, "socket_keepalive": True}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600, **_REDIS_SOCKETS}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600, **_REDIS_SOCKETS}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis going away must not end a worker: it reconnects for as long as it takes (Celery's default
# gives up after 100 attempts). Requests publish after commit and briefly (sweeps queue the rest).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 3
CELERY_REDIS_SOCKET_TIMEOUT = 10
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # our JSON logging applies to workers too
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set (the tasks between its closes). A task then paid for two new PostgreSQL backends
# (the schema switch connected first, then the fix-up closed that too): a fork, the login and
# cold catalogue caches, ~0.4 s of the server's CPU in a 22-batch folder drop. Connections are
# kept from task to task instead and checked after each as Django does after each request
# (config.celery_app): closed when broken, older than CONN_MAX_AGE or past DB_CONN_MAX_SCHEMAS,
# and health-checked before the next task uses them (CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "secondread")
# Patient-facing work (ingest, previews, emails, go-live) stays on CELERY_QUEUE; sweeps across
# institutions and usage measurement go here, consumed by their own worker (config/celery_routes).
CELERY_HOUSEKEEPING_QUEUE = env_str("CELERY_HOUSEKEEPING_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}-housekeeping")
CELERY_TASK_ROUTES = ("config.celery_routes.route_task",)
# Task modules outside an app's tasks.py (autodiscovery only finds those).
CELERY_IMPORTS = ("intake.tus.tasks", "config.mail", "config.metrics_tasks")
# Beat touches its liveness file at every tick (config.celery_probes); tick at least this often.
CELERY_BEAT_SCHEDULER = "config.celery_probes:ProbedScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 30
# An ingesting worker's heartbeat, and how old it may get before its uploads are taken again.
INGEST_HEARTBEAT_SECONDS = env_int("INGEST_HEARTBEAT_SECONDS", 30, minimum=1)
INGEST_STALE_SECONDS = env_int("INGEST_STALE_SECONDS", 180, minimum=INGEST_HEARTBEAT_SECONDS * 3)
# How long the outbox sweep leaves a message queued at commit to its own task before queueing it
# again (outbox.sweep); a message the broker never got waits this long after Redis is back.
OUTBOX_SWEEP_GRACE_SECONDS = env_int("OUTBOX_SWEEP_GRACE_SECONDS", 30, minimum=0)
CELERY_BEAT_SCHEDULE = {
    # Queue depth, storage and per-institution gauges for Prometheus (config.metrics).
    "metrics-refresh": {"task": "config.metrics_refresh", "schedule": 30.0},
    # Unfinished uploads expire 24 h after their last chunk: abort their multipart uploads,
    # delete their staged bytes, mark them EXPIRED (tus expiration extension).
    "tus-uploads-expire": {"task": "intake.tus.uploads_expire_all", "schedule": 3600.0},
    # Uploads whose ingest task was lost (the broker was away) or whose worker died (no
    # heartbeat for INGEST_STALE_SECONDS) are queued again: within minutes, not an hour.
    "uploads-ingest-resume": {"task": "imaging.uploads_ingest_resume_all", "schedule": 120.0},
    # The operator console's storage and case figures per institution.
    "institution-usage-refresh": {"task": "tenants.institution_usage_refresh", "schedule": 900.0},
    # Go-lives whose worker died (or whose task was lost) are resumed or rolled back, and
    # schemas nobody owns are dropped (institutions.recovery).
    "onboardings-recover": {"task": "tenants.onboardings_recover", "schedule": 300.0},
    # Sign-ups never taken live free their subdomain (and logo, and schema) after 30 days.
    "onboardings-discard-abandoned": {"task": "tenants.onboardings_discard_abandoned", "schedule": 86400.0},
    # Unsent drafts untouched for 60 days: their owners warned, a week later deleted with files.
    "drafts-purge": {"task": "intake.drafts_purge_all", "schedule": 86400.0},
    # Custom domains whose DNS no longer points at us stop being routed (dangling-domain takeover).
    "custom-domains-recheck": {"task": "tenants.custom_domains_recheck", "schedule": 86400.0},
    # Outbox messages the broker never got, retries that are due, deliveries whose worker died.
    "outbox-sweep": {"task": "outbox.sweep", "schedule": 30.0},
    # Staff notices of cases due tomorrow or overdue (once per case per day).
    "cases-due-notify": {"task": "review.cases_due_notify_all", "schedule": 86400.0},
}

# The DICOM C-STORE gateway (./sr manage dicom_gateway, intake.gateway) as hospitals reach it:
# shown to each institution's admins with its AE title. No host: this platform runs no gateway.
DICOM_GATEWAY_HOST = env_str("DICOM_GATEWAY_HOST", "").strip()
DICOM_GATEWAY_PORT = env_int("DICOM_GATEWAY_PORT", 11112, minimum=1)

# Three Redis roles, each may be its own server: the cache (CACHE_URL; may evict, see
# docs/scaling.md), the broker (CELERY_BROKER_URL; must never evict) and task results
# (CELERY_RESULT_BACKEND). All default to REDIS_URL, fine for one machine.
CACHE_URL = env_url("CACHE_URL", ("redis", "rediss", "unix")) or REDIS_URL
# How long a DICOM instance's metadata stays cached (imaging.dicomweb.selectors).
DICOM_METADATA_CACHE_SECONDS = env_int("DICOM_METADATA_CACHE_SECONDS", 24 * 3600, minimum=60)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# Prometheus metrics on their own port (config.metrics), served by gunicorn's master and the
# worker's main process; 0 turns them off. With METRICS_TOKEN, scrapes need that bearer token.
METRICS_PORT = env_int("METRICS_PORT", 0, minimum=0)
METRICS_TOKEN = env_optional("METRICS_TOKEN") or ""

# How long /readyz and /healthz wait for each dependency (config.probes); the kubelet's own
# probe timeout is 2 s.
PROBE_TIMEOUT_MS = env_int("PROBE_TIMEOUT_MS", 800, minimum=50)

# --- Storage --------------------------------------------------------------------------------
STORAGE_BACKEND = env_choice("STORAGE_BACKEND", "filesystem", ("filesystem", "s3"))
STORAGE_FILESYSTEM_ROOT = env_path("STORAGE_FILESYSTEM_ROOT", DATA_DIR / "files")
S3_ENDPOINT = env_optional("S3_ENDPOINT") or env_optional("MINIO_ENDPOINT") or ""
S3_ACCESS_KEY = env_optional("S3_ACCESS_KEY") or env_optional("MINIO_ACCESS_KEY") or ""
S3_SECRET_KEY = env_optional("S3_SECRET_KEY") or env_optional("MINIO_SECRET_KEY") or ""
S3_BUCKET = env_str("S3_BUCKET", "secondread")
S3_SECURE = env_bool("S3_SECURE", True)
S3_REGION = env_str("S3_REGION", "us-east-1")
# Encryption at rest: the bucket's default encryption is set to SSE-S3 when it has none.
S3_SSE = env_bool("S3_SSE", True)
if STORAGE_BACKEND == "s3" and not (S3_ENDPOINT and S3_ACCESS_KEY and S3_SECRET_KEY):
    raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY.")
SIGNED_URL_SECONDS = env_int("SIGNED_URL_SECONDS", 300, minimum=10)

# --- DICOMweb -------------------------------------------------------------------------------
# Web origins (scheme://host[:port]) whose pages may call DICOMweb across origins (CORS), e.g. a
# hospital's own OHIF. They authenticate with an integration key; cookies never cross origins.
DICOMWEB_CORS_ORIGINS = env_list("DICOMWEB_CORS_ORIGINS", [])

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Django's and allauth's backends, reading the signed-in user's row by a statement compiled once.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ModelBackend",
    "accounts.backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "ACCOUNT_EMAIL_VERIFICATION", "mandatory", ("mandatory", "optional", "none")
)
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = PLATFORM_SCHEME
# Per client address ("ip", the real client behind TRUSTED_PROXIES) and per account ("key": the
# email; "user": the signed-in account). allauth applies its own actions (sign-in, failed
# sign-in and TOTP codes, sign-up, password reset); the others are ours (accounts.ratelimits).
SR_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",  # also allauth's TOTP step, keyed per account
    "signup": "10/m/ip",
    "signup_email": "3/h/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "onboarding_start": "10/m/ip,3/h/key",
    "onboarding_sign_in": "10/m/ip,5/5m/key",
    "onboarding_verify": "10/m/ip,5/5m/key",
    "opinion_sign": "10/m/ip,5/5m/user",
    "waiver_code": "10/m/ip,10/h/user",
    # Codes of opinion links shared with a doctor (each link also locks after 5 wrong codes).
    "share_code": "10/m/ip",
    # The patient emails their doctor a shared opinion's link or code (review.share_emails).
    "share_email": "10/m/ip,10/h/user",
    "continue_link": "10/m/ip,5/h/user",
}
ACCOUNT_RATE_LIMITS = SR_RATE_LIMITS
# Patients give their name and who they act for at sign-up (the email and password fields are
# allauth's); emails name the institution in their subject instead of a "[site]" prefix.
ACCOUNT_SIGNUP_FORM_CLASS = "intake.signup.PatientSignupForm"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
# Following the emailed link signs a new patient in, but only in the browser that signed up
# (allauth checks the pending sign-up in the session), so a leaked link cannot sign anyone in.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# Staff must use a second factor (TOTP, enforced by review.middleware); recovery codes are the
# way back in when a phone is lost.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Staff single sign-on: each institution's administrator sets its own OpenID Connect provider
# (accounts.models.SingleSignOn); the app is built per request from that row, never from
# settings, and the provider class checks what allauth's leaves out (the ID token's signature
# always, its nonce, the configured issuer). Nobody signs up this way (accounts.sso.adapter).
SOCIALACCOUNT_ADAPTER = "accounts.sso.adapter.SocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "provider_class": "accounts.sso.provider.InstitutionOIDCProvider",
        "OAUTH_PKCE_ENABLED": True,
    }
}
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10
MFA_TOTP_ISSUER = "SecondRead"
# Second-factor secrets and every other stored credential (``*_encrypted`` fields: PACS, FHIR,
# single sign-on) are encrypted at rest (accounts.mfa_adapter) with these keys: the first
# encrypts, all decrypt (rotation: put a new key first, run `manage.py mfa_secrets_reencrypt`,
# then drop the old). Production has no default; development derives one from SECRET_KEY.
MFA_ADAPTER = "accounts.mfa_adapter.MFAAdapter"
MFA_ENCRYPTION_KEYS = env_list("MFA_ENCRYPTION_KEYS", [] if PRODUCTION else [f"mfa:{SECRET_KEY}"])
if not MFA_ENCRYPTION_KEYS or any(len(key) < 32 for key in MFA_ENCRYPTION_KEYS):
    raise ImproperlyConfigured(
        "MFA_ENCRYPTION_KEYS (or MFA_ENCRYPTION_KEYS_FILE) needs one or more keys of 32+ characters, "
        "comma-separated, newest first (e.g. `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`)."
    )

# Django's database sessions; the row is read by a statement compiled once (accounts.sessions).
SESSION_ENGINE = "accounts.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
# Patients (and applicants) are signed out after this many idle minutes; staff follow their
# institution's setting, operators 15 minutes (accounts.middleware).
PATIENT_IDLE_MINUTES = env_int("PATIENT_IDLE_MINUTES", 30, minimum=5)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
# Production: plain HTTP is redirected and browsers are told to use HTTPS only (HSTS), by the
# app itself, whatever proxy is in front. Probes and the proxy's certificate question reach the
# app over plain HTTP inside the deployment, so those two paths are exempt.
SECURE_SSL_REDIRECT = PRODUCTION and env_bool("SR_HTTPS_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^tls/ask$"]
SECURE_HSTS_SECONDS = 31536000 if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION  # every institution's subdomain is HTTPS too
# No HSTS preload: being on browsers' preload list is a choice for whoever owns the platform's
# domain (it binds every subdomain and takes months to undo), not a default of the app.
# `manage.py check --deploy` (./sr check deploy) would warn about it; every other warning fails.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Email ----------------------------------------------------------------------------------
# Requests never talk to a mail server: EMAIL_BACKEND writes each message to the outbox with the
# change that caused it (outbox.mail) and a Celery task sends it with EMAIL_DELIVERY_BACKEND,
# whose connections give up after EMAIL_TIMEOUT, retrying with back-off until it is taken.
EMAIL_URL = env_url("EMAIL_URL", ("smtp", "smtps", "console", "file"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "SecondRead <no-reply@secondread.localhost>")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
if EMAIL_URL is None or EMAIL_URL.startswith("console:"):
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif EMAIL_URL.startswith("file:"):
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "mail")
else:
    from urllib.parse import unquote, urlsplit

    _mail = urlsplit(EMAIL_URL)
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or ""
    EMAIL_PORT = _mail.port or (465 if _mail.scheme == "smtps" else 587)
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_SSL = _mail.scheme == "smtps"
    EMAIL_USE_TLS = _mail.scheme == "smtp"

# --- Payments (Stripe Connect) -------------------------------------------------------------
# The platform's own Stripe key: institutions connect their own Stripe accounts to the platform
# (Connect), so their keys are never held here. Empty: online payment is not set up, and
# charging institutions accept waiver codes only.
STRIPE_SECRET_KEY = env_optional("STRIPE_SECRET_KEY") or ""
# Signing secret of the platform's Connect webhook endpoint (/stripe/webhook on PLATFORM_DOMAIN).
STRIPE_WEBHOOK_SECRET = env_optional("STRIPE_WEBHOOK_SECRET") or ""
# Another API base URL (a local test double); empty means Stripe's own.
STRIPE_API_BASE = env_optional("STRIPE_API_BASE") or ""

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_IMMUTABLE_FILE_TEST = immutable_file_test  # a string here would be read as a regex

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
# What patients see is in these languages (locale/<code>/LC_MESSAGES, `python -m
# config.translations update` refreshes them); staff pages and the platform stay in English.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The language switch's choice is remembered for a year (Django's default: until the browser closes).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SECURE = PRODUCTION
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Templates write dates as |date:"DATE_FORMAT": each language's own way (config/formats/en).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logging.ContextFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django logs the full request path of failing requests; ours carry no patient data,
        # but the request object itself (with POST bodies) must never reach a handler.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        # pynetdicom's debug output dumps whole datasets (names, dates of birth) and its info
        # output every message of every association: neither belongs in our logs.
        "pynetdicom": {"level": "WARNING"},
    },
}

# --- Error reports (optional) ---------------------------------------------------------------
# Sentry, with patient data scrubbed from every event before it is sent (config.sentry).
SENTRY_DSN = env_optional("SENTRY_DSN") or ""
if SENTRY_DSN:
    from config.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=SR_MODE, release=env_optional("SR_RELEASE") or "")
