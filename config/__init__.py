"""SecondRead's project package (settings, URLs, Celery app, launcher). Named ``config``, not
``platform``: a top-level ``platform`` package would shadow Python's standard library module
that ``uuid`` (and so Django) imports at start-up."""

from config.celery_app import app as celery_app

__all__ = ("celery_app",)
