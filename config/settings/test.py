"""Test settings: the base settings with a fast hasher, in-memory email and throw-away files.
Services are the real ones (PostgreSQL, Redis) that ``./sr test`` starts or finds.

Each test run has its own id (``SR_TEST_RUN``, passed on to the live server and workers it
starts), and with it its own test database, file root and Celery queue, so two runs on one
machine (or a running ``./sr run``) never touch each other's data or tasks.
"""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import DATA_DIR, DATABASES, SR_RATE_LIMITS


def run_id_for(inherited: str | None, pid: int, xdist_worker: str) -> str:
    """This run's id: the one inherited from the process that started this one, else the pid.
    Each pytest-xdist worker (``./sr test --quick``) is a run of its own: it adds its name to the
    id it inherited, once; the live server and workers it starts inherit both the id and the
    worker's name, and must not add it again (they would use other files and queues)."""
    run = inherited or str(pid)
    return run if run.endswith(xdist_worker) else run + xdist_worker


TEST_RUN = run_id_for(os.environ.get("SR_TEST_RUN"), os.getpid(), os.environ.get("PYTEST_XDIST_WORKER", ""))
os.environ["SR_TEST_RUN"] = TEST_RUN

DATABASES["default"]["TEST"] = {"NAME": f"test_secondread_{TEST_RUN}"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# In the test process emails are kept in memory (mail.outbox), sent at once.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The live server and the worker are other processes, set up as in production: the server
# writes each email to the outbox, the worker sends it into files the test reads (e.g. the link of a
# sign-up's verification email).
if os.environ.get("SR_TEST_MAIL_DIR"):
    EMAIL_BACKEND = "outbox.mail.OutboxEmailBackend"
    EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["SR_TEST_MAIL_DIR"]
STORAGE_FILESYSTEM_ROOT = DATA_DIR / "test-files" / TEST_RUN
# The test machine is shared and loaded: a first connection may take longer than production's
# sub-second probe deadline.
PROBE_TIMEOUT_MS = 5000
# The worker's and beat's liveness files (config.celery_probes), apart from other runs'.
os.environ.setdefault("SR_PROBE_DIR", str(DATA_DIR / "probes" / TEST_RUN))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Off for speed and independence of tests; the rate-limit tests turn them on (in-process with
# override_settings, in a live server with SR_TEST_RATE_LIMITS=1).
ACCOUNT_RATE_LIMITS = SR_RATE_LIMITS if os.environ.get("SR_TEST_RATE_LIMITS") else False  # type: ignore[assignment]
# A test's own processes may get queues of their own (SR_TEST_QUEUE, tests/faults), so the
# session's worker never takes work a fault test means for the worker it kills.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("SR_TEST_QUEUE") or f"secondread-test-{TEST_RUN}"
CELERY_HOUSEKEEPING_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-housekeeping"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Most go-live tests want a live institution; the approval tests turn this on (the default).
INSTITUTIONS_NEED_APPROVAL = False
# The DNS tests' unreachable server is a closed port on loopback: no need to wait 5 s for it
# (a loaded machine still answers from the real test server on loopback well within this).
DNS_RESOLVER_LIFETIME = 1.5
