"""Talking to the institution's FHIR server: an access token (a static bearer token, or OAuth 2.0
client credentials, RFC 6749 §4.4) and one transaction Bundle POSTed to the server's base.

Failures are sorted for the outbox: what may pass (the server is down, busy, or answers 5xx)
raises ``TryAgain``; what needs someone to change a setting (our credentials refused, the
server rejects the resources) raises ``Undeliverable``. Their texts are shown to the
institution's admins, so they hold the HTTP status and the FHIR issue codes, never a server's
free text (which may quote the resources, i.e. patient data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests

from outbox.deliverers import TryAgain, Undeliverable

TIMEOUT = (10, 120)  # connect, read: a report with its PDF is a few hundred kB
FHIR_JSON = "application/fhir+json"

NOT_REACHED = "FHIR: the server could not be reached."
TOKEN_NOT_REACHED = "FHIR: the token endpoint could not be reached."  # noqa: S105 (a message)
TOKEN_REFUSED = "FHIR: the token endpoint refused our client id or secret (HTTP {status})."  # noqa: S105 (a message)
TOKEN_UNREADABLE = "FHIR: the token endpoint's answer held no access token."  # noqa: S105 (a message)
AUTH_REFUSED = "FHIR: the server refused our credentials (HTTP {status}): check the token or client."
BUSY = "FHIR: the server answered HTTP {status}; it will be tried again."
REFUSED = "FHIR: the server refused the report (HTTP {status}{codes})."
NOT_FHIR = "FHIR: the address answered, but not with a FHIR CapabilityStatement (is it the base?)."
NOT_R4 = "FHIR: the server speaks FHIR {version}; SecondRead sends R4 (4.0.x)."
ENTRY_REFUSED = "FHIR: the server refused part of the report ({statuses})."

# Statuses that say "later" rather than "no".
_TRANSIENT = {408, 425, 429}


@dataclass(frozen=True)
class FhirServer:
    base_url: str
    auth: str = "none"  # "none", "bearer" or "client_credentials"
    secret: str = ""  # the bearer token, or the client secret
    token_url: str = ""
    client_id: str = ""
    scope: str = ""


def _raise_for(status: int, *, auth: str, refused: str) -> None:
    if status in (401, 403):
        raise Undeliverable(auth.format(status=status))
    if status >= 500 or status in _TRANSIENT:
        raise TryAgain(BUSY.format(status=status))
    raise Undeliverable(refused)


def access_token(server: FhirServer) -> str | None:
    """The token to send, fetched afresh for client credentials (a push is rare; a cached token
    would only save one request)."""
    if server.auth == "bearer":
        return server.secret
    if server.auth != "client_credentials":
        return None
    data = {"grant_type": "client_credentials"}
    if server.scope:
        data["scope"] = server.scope
    try:
        response = requests.post(
            server.token_url,
            data=data,
            auth=(server.client_id, server.secret),  # client_secret_basic, which servers must take
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
    except requests.RequestException:
        raise TryAgain(TOKEN_NOT_REACHED) from None
    if response.status_code != 200:
        refused = TOKEN_REFUSED.format(status=response.status_code)
        _raise_for(response.status_code, auth=TOKEN_REFUSED, refused=refused)
    try:
        token = response.json()["access_token"]
    except (ValueError, KeyError, TypeError):
        raise Undeliverable(TOKEN_UNREADABLE) from None
    if not isinstance(token, str) or not token:
        raise Undeliverable(TOKEN_UNREADABLE)
    return token


def _issue_codes(response: requests.Response) -> str:
    """An OperationOutcome's issue codes ("invalid", "required"), never its diagnostics."""
    try:
        outcome = response.json()
        codes = sorted({str(issue.get("code")) for issue in outcome.get("issue", []) if issue.get("code")})
    except (ValueError, AttributeError, TypeError):
        return ""
    return f": {', '.join(codes)[:80]}" if codes else ""


def transaction_post(server: FhirServer, bundle: dict[str, Any]) -> list[str]:
    """POST ``bundle`` (type transaction) to the server's base; the locations of what it holds
    now (created, or found by a conditional create). Raises TryAgain or Undeliverable."""
    token = access_token(server)
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.post(
            server.base_url.rstrip("/"),
            data=json.dumps(bundle, separators=(",", ":")).encode(),
            headers=headers,
            timeout=TIMEOUT,
        )
    except requests.RequestException:
        raise TryAgain(NOT_REACHED) from None
    if response.status_code != 200:
        refused = REFUSED.format(status=response.status_code, codes=_issue_codes(response))
        _raise_for(response.status_code, auth=AUTH_REFUSED, refused=refused)
    try:
        entries = response.json().get("entry", [])
        statuses = [str(entry["response"]["status"]) for entry in entries]
        locations = [str(entry["response"].get("location", "")) for entry in entries]
    except (ValueError, AttributeError, KeyError, TypeError):
        raise Undeliverable(
            REFUSED.format(status=response.status_code, codes=": no transaction-response")
        ) from None
    failed = [status for status in statuses if not status.startswith("2")]
    if failed or len(statuses) != len(bundle.get("entry", [])):
        raise Undeliverable(ENTRY_REFUSED.format(statuses=", ".join(failed)[:100] or "entries missing"))
    return locations


def capability_check(server: FhirServer) -> str:
    """Sign in and read the server's CapabilityStatement (``GET [base]/metadata``); its FHIR
    version. Raises TryAgain or Undeliverable with what is wrong, in words for the admin."""
    token = access_token(server)
    headers = {"Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.get(server.base_url.rstrip("/") + "/metadata", headers=headers, timeout=TIMEOUT)
    except requests.RequestException:
        raise TryAgain(NOT_REACHED) from None
    if response.status_code != 200:
        refused = REFUSED.format(status=response.status_code, codes=_issue_codes(response))
        _raise_for(response.status_code, auth=AUTH_REFUSED, refused=refused)
    try:
        statement = response.json()
        assert statement["resourceType"] == "CapabilityStatement"
        version = str(statement["fhirVersion"])
    except (ValueError, KeyError, TypeError, AssertionError):
        raise Undeliverable(NOT_FHIR) from None
    if not version.startswith(("4.0", "4.3")):
        raise Undeliverable(NOT_R4.format(version=version[:20]))
    return version
