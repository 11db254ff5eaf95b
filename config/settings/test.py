"""Test settings: the base settings with a fast hasher, in-memory email and throw-away files.
Services are the real ones (PostgreSQL, Redis) that ``./sr test`` starts or finds.

Each test run has its own id (``SR_TEST_RUN``, passed on to the live server and workers it
starts), and with it its own test database, file root and Celery queue, so two runs on one
machine (or a running ``./sr run``) never touch each other's data or tasks.
"""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import DATA_DIR, DATABASES, env_str

TEST_RUN = env_str("SR_TEST_RUN", str(os.getpid()))
os.environ["SR_TEST_RUN"] = TEST_RUN

DATABASES["default"]["TEST"] = {"NAME": f"test_secondread_{TEST_RUN}"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The browser tests' live server is another process: it writes its emails to files the test
# reads (e.g. the link of a sign-up's verification email).
if os.environ.get("SR_TEST_MAIL_DIR"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["SR_TEST_MAIL_DIR"]
STORAGE_FILESYSTEM_ROOT = DATA_DIR / "test-files" / TEST_RUN
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
ACCOUNT_RATE_LIMITS = False  # type: ignore[assignment]
CELERY_TASK_DEFAULT_QUEUE = f"secondread-test-{TEST_RUN}"
CELERY_HOUSEKEEPING_QUEUE = f"secondread-test-{TEST_RUN}-housekeeping"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
