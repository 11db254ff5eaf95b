"""Test settings: the base settings with a fast hasher, in-memory email and a throw-away file
root. Services are the real ones (PostgreSQL, Redis) that ``./sr test`` starts or finds."""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATA_DIR, env_str

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGE_FILESYSTEM_ROOT = DATA_DIR / "test-files"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
ACCOUNT_RATE_LIMITS = False
# A queue of its own, so a worker of a running `./sr run` never takes the tests' tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "secondread-test")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
