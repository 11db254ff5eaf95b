"""Every email leaves through a Celery task, never from the request that caused it.

``QueuedEmailBackend`` is Django's ``EMAIL_BACKEND``: whatever sends mail (allauth's sign-up,
password-reset and MFA emails, our branded notifications) hands its messages to this backend,
which turns each into JSON and queues ``config.email_deliver`` once the surrounding transaction
commits (an email about a change that rolled back is never sent). The task rebuilds the message
and sends it with ``EMAIL_DELIVERY_BACKEND`` (SMTP in production, bounded by ``EMAIL_TIMEOUT``),
retrying with back-off while the mail server is unreachable. A stalled SMTP server therefore
slows a worker, never a web thread.

Delivery is at-least-once: a worker that dies after the server accepted a message but before
the task is acknowledged sends it again when the task is redelivered.
"""

from __future__ import annotations

import base64
import logging
import smtplib
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from config.celery_app import app

logger = logging.getLogger("config.mail")


def message_to_json(message: EmailMessage) -> dict[str, Any]:
    attachments = []
    for attachment in message.attachments:
        if not isinstance(attachment, tuple):
            raise TypeError("queued emails take attachments as (filename, content, mimetype) only")
        filename, content, mimetype = attachment
        raw = content.encode() if isinstance(content, str) else bytes(content)
        attachments.append([filename, base64.b64encode(raw).decode(), mimetype])
    return {
        "subject": str(message.subject),
        "body": str(message.body),
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": dict(message.extra_headers),
        "content_subtype": message.content_subtype,
        "alternatives": [
            [str(content), mimetype] for content, mimetype in getattr(message, "alternatives", [])
        ],
        "attachments": attachments,
    }


def message_from_json(data: dict[str, Any]) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=data["subject"],
        body=data["body"],
        from_email=data["from_email"],
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        reply_to=data["reply_to"],
        headers=data["headers"],
    )
    message.content_subtype = data["content_subtype"]
    for content, mimetype in data["alternatives"]:
        message.attach_alternative(content, mimetype)
    for filename, content, mimetype in data["attachments"]:
        message.attach(filename, base64.b64decode(content), mimetype)
    return message


class QueuedEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            payload = message_to_json(message)
            transaction.on_commit(lambda payload=payload: email_deliver.delay(payload))  # type: ignore[misc]
        return len(email_messages)


@app.task(
    name="config.email_deliver",
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=10,
)
def email_deliver(payload: dict[str, Any]) -> None:
    """Send one queued email with the real backend (``EMAIL_DELIVERY_BACKEND``)."""
    message = message_from_json(payload)
    connection = get_connection(settings.EMAIL_DELIVERY_BACKEND, fail_silently=False)
    message.connection = connection
    message.send()
    logger.info("email sent", extra={"event": "email.sent", "count": len(message.recipients())})
