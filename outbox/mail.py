"""Every email is an outbox message: Django's ``EMAIL_BACKEND`` writes it with the change that
caused it and a worker sends it afterwards with ``EMAIL_DELIVERY_BACKEND``.

Whatever sends mail (allauth's sign-up, password-reset and MFA emails, our branded
notifications) calls Django's ``send()``; ``OutboxEmailBackend`` turns each message into JSON
and enqueues it in the current schema and transaction, so an email about a change that rolled
back is never sent and one about a change that committed is never lost. A stalled or refusing
mail server slows a worker, never a web request, and the message is retried with back-off.

A sender may give a message a dedupe key (``message.outbox_key``, see ``email_key_set``): the
same key is sent once however often the code that sends it runs.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend

from outbox import deliverers
from outbox.services import enqueue

EMAIL = "email"


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


def email_key_set(message: EmailMessage, key: str) -> EmailMessage:
    """Send ``message`` at most once for ``key`` (e.g. "case-status:12:3")."""
    message.outbox_key = key  # type: ignore[attr-defined]
    return message


class OutboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            key = getattr(message, "outbox_key", None) or f"email:{uuid.uuid4().hex}"
            # The subject names the institution and the case number at most, never the patient.
            enqueue(kind=EMAIL, key=key, payload=message_to_json(message), summary=str(message.subject))
        return len(email_messages)


def email_deliver(payload: dict[str, Any]) -> None:
    """Send one email with the real backend; raises if the server did not take it."""
    message = message_from_json(payload)
    message.connection = get_connection(settings.EMAIL_DELIVERY_BACKEND, fail_silently=False)
    message.send()


deliverers.register(EMAIL, email_deliver)
