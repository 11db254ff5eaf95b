"""Error reports to Sentry never carry patient data: a patient's name raised in an exception,
logged by a third party or posted in a form is gone from the event before it is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from config.sentry import scrub_event, sentry_init

PATIENT = "Zebedee Quartermain"


class CapturingTransport(Transport):
    """Sentry's network boundary: keeps the envelopes it would have sent."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def sent(self) -> str:
        return "\n".join(item.get_bytes().decode() for env in self.envelopes for item in env.items)


@pytest.fixture
def sentry() -> Iterator[CapturingTransport]:
    transport = CapturingTransport()
    sentry_init(dsn="https://public@sentry.invalid/1", environment="test", release="", transport=transport)
    yield transport
    sentry_sdk.flush()
    sentry_sdk.init()  # off again for the other tests


def test_an_exception_reaches_sentry_without_its_message(sentry: CapturingTransport) -> None:
    patient_name = PATIENT  # a local variable too: never sent
    try:
        raise ValueError(f"could not parse the header of {patient_name}")
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush()
    sent = sentry.sent()
    assert "ValueError" in sent
    assert PATIENT not in sent and "Zebedee" not in sent


def test_third_party_log_messages_keep_their_template_only() -> None:
    # The event Sentry's logging integration makes of
    # logging.getLogger("pydicom").error("Invalid value for PatientName: %s", PATIENT):
    event = {
        "level": "error",
        "logger": "pydicom",
        "logentry": {
            "message": "Invalid value for PatientName: %s",
            "formatted": f"Invalid value for PatientName: {PATIENT}",
            "params": [PATIENT],
        },
        "breadcrumbs": {"values": [{"category": "pydicom", "message": f"read {PATIENT}", "data": {"x": 1}}]},
    }
    scrubbed = json.dumps(scrub_event(event))
    assert "Invalid value for PatientName: %s" in scrubbed
    assert "Zebedee" not in scrubbed


def test_a_requests_form_fields_query_and_cookies_are_dropped() -> None:
    event = {
        "request": {
            "url": f"https://neuro.example.com/intake/?name={PATIENT}",
            "method": "POST",
            "query_string": f"name={PATIENT}",
            "data": {"patient_name": PATIENT},
            "cookies": {"sessionid": "secret"},
            "headers": {"Referer": f"https://neuro.example.com/?q={PATIENT}"},
        },
        "user": {"email": "zebedee@example.com"},
        "extra": {"patient": PATIENT},
    }
    scrubbed = json.dumps(scrub_event(event))
    assert "Zebedee" not in scrubbed and "zebedee" not in scrubbed and "sessionid" not in scrubbed
    assert '"url": "https://neuro.example.com/intake/"' in scrubbed


def test_events_have_no_user_or_extra(sentry: CapturingTransport) -> None:
    sentry_sdk.set_user({"email": "zebedee@example.com"})
    sentry_sdk.set_extra("patient", PATIENT)
    sentry_sdk.capture_message("ingest failed")
    sentry_sdk.flush()
    sent = sentry.sent()
    assert "ingest failed" in sent  # our own message is kept
    assert "zebedee" not in sent.lower()
