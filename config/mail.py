"""Emails now leave through the outbox (``outbox.mail``): ``EMAIL_BACKEND`` writes each one with
the change that caused it and a worker sends it.

``config.email_deliver`` stays only for messages a previous version queued straight to the
broker, so a deploy does not drop the ones still waiting there; nothing queues it any more.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import get_connection

from config.celery_app import app
from outbox.mail import message_from_json

logger = logging.getLogger("config.mail")


@app.task(
    name="config.email_deliver",
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=10,
)
def email_deliver(payload: dict[str, Any]) -> None:
    """Send one email queued by the previous version (before the outbox)."""
    message = message_from_json(payload)
    message.connection = get_connection(settings.EMAIL_DELIVERY_BACKEND, fail_silently=False)
    message.send()
    logger.info("email sent", extra={"event": "email.sent", "count": len(message.recipients())})
