"""A small local FHIR R4 server standing in for a hospital's (none installs here: HAPI is a
Java application served by no package source we have), for tests of pushing opinions.

What it checks is what a strict server would, with the same models SecondRead builds with
(``fhir.resources`` R4B, FHIR 4.3, R4-compatible for these resources):

- ``POST /token``: OAuth 2.0 client credentials (RFC 6749 §4.4) with HTTP Basic client
  authentication; answers a bearer token, or 401 ``invalid_client``.
- ``GET /fhir/metadata``: an R4 CapabilityStatement (for the settings page's test button).
- ``POST /fhir``: a ``transaction`` Bundle, ``Content-Type: application/fhir+json``, the bearer
  token when one is required. Every entry's resource is validated by its own model, every
  ``urn:uuid:`` reference must name an entry of the bundle, and each POST with ``ifNoneExist``
  is a conditional create (an identifier already held answers ``200 OK`` with the existing
  resource, else ``201 Created``); each ``PUT Type?identifier=...`` a conditional update (the
  one match replaced, ``200 OK``, else created, ``201 Created``). Answers a
  ``transaction-response`` Bundle, or 400/401 with an OperationOutcome.

``fail_with(status)`` answers the next POSTs with that status (a server that is down for
maintenance answers 503). Held resources are in ``resources[type][id]``; every request is
recorded in ``requests``.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests.serving import serve_in_thread

FHIR_JSON = "application/fhir+json"
CAPABILITIES = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "date": "2026-01-01",
    "kind": "instance",
    "fhirVersion": "4.0.1",
    "format": ["application/fhir+json"],
    "rest": [{"mode": "server", "interaction": [{"code": "transaction"}]}],
}


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FhirDouble:
    client_id: str = ""
    client_secret: str = ""
    bearer: str = ""  # a static token the server accepts (besides those it issued)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    failures: list[int] = field(default_factory=list)

    def start(self) -> FhirDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                double._post(self)

            def do_GET(self) -> None:
                double._get(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_with(self, status: int, times: int = 1) -> None:
        self.failures.extend([status] * times)

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return list(self.resources.get(resource_type, {}).values())

    # --- the server ---------------------------------------------------------------------------

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        self.requests.append(Recorded(handler.path, dict(handler.headers.items()), b""))
        if handler.path != "/fhir/metadata":
            _answer(handler, 404, _outcome("not-found", "No such endpoint"))
        elif not self._authorised(handler):
            _answer(handler, 401, _outcome("login", "A valid bearer token is needed"))
        else:
            _answer(handler, 200, CAPABILITIES)

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        self.requests.append(Recorded(handler.path, dict(handler.headers.items()), body))
        if self.failures:
            _answer(handler, self.failures.pop(0), _outcome("transient", "Down for maintenance"))
            return
        if handler.path == "/token":
            self._token(handler, body)
        elif handler.path.rstrip("/") == "/fhir":
            self._transaction(handler, body)
        else:
            _answer(handler, 404, _outcome("not-found", "No such endpoint"))

    def _token(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        form = dict(parse_qsl(body.decode()))
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if form.get("grant_type") != "client_credentials" or not self.client_id:
            _answer(handler, 400, {"error": "unsupported_grant_type"}, content_type="application/json")
            return
        if handler.headers.get("Authorization") != f"Basic {expected}":
            _answer(handler, 401, {"error": "invalid_client"}, content_type="application/json")
            return
        token = secrets.token_urlsafe(16)
        self.issued.add(token)
        answer = {"access_token": token, "token_type": "bearer", "expires_in": 300}
        _answer(handler, 200, answer, content_type="application/json")

    def _authorised(self, handler: BaseHTTPRequestHandler) -> bool:
        if not (self.bearer or self.client_id):
            return True
        given = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
        return bool(given) and (given == self.bearer or given in self.issued)

    def _transaction(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if not self._authorised(handler):
            _answer(handler, 401, _outcome("login", "A valid bearer token is needed"))
            return
        if not (handler.headers.get("Content-Type") or "").startswith(FHIR_JSON):
            _answer(handler, 415, _outcome("not-supported", "Send application/fhir+json"))
            return
        try:
            data = json.loads(body)
            bundle = Bundle.model_validate(data)
            for entry in data["entry"]:
                get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
        except Exception as error:
            _answer(handler, 400, _outcome("invalid", f"Not a valid FHIR resource: {error}"))
            return
        if bundle.type != "transaction":
            _answer(handler, 400, _outcome("invalid", "Only transactions are taken here"))
            return
        full_urls = {entry["fullUrl"] for entry in data["entry"] if entry.get("fullUrl")}
        dangling = [ref for ref in _references(data) if ref.startswith("urn:uuid:") and ref not in full_urls]
        if dangling:
            _answer(handler, 400, _outcome("invalid", f"References to nothing: {dangling}"))
            return
        assigned: dict[str, str] = {}
        answers = []
        for entry in data["entry"]:
            resource, request = entry["resource"], entry["request"]
            kind = resource["resourceType"]
            if request["method"] == "PUT":
                url_kind, _, condition = request["url"].partition("?")
                assert url_kind == kind and condition, request
                existing = self._match(kind, condition)
                if existing is not None:
                    self.resources[kind][existing] = {**resource, "id": existing}
                    assigned[entry["fullUrl"]] = f"{kind}/{existing}"
                    answers.append(
                        {"response": {"status": "200 OK", "location": f"{kind}/{existing}/_history/2"}}
                    )
                    continue
            existing = self._match(kind, request.get("ifNoneExist", ""))
            if existing is not None:
                assigned[entry["fullUrl"]] = f"{kind}/{existing}"
                answers.append(
                    {"response": {"status": "200 OK", "location": f"{kind}/{existing}/_history/1"}}
                )
                continue
            new_id = secrets.token_hex(8)
            assigned[entry["fullUrl"]] = f"{kind}/{new_id}"
            self.resources.setdefault(kind, {})[new_id] = {**resource, "id": new_id}
            answers.append({"response": {"status": "201 Created", "location": f"{kind}/{new_id}/_history/1"}})
        for held in (r for kinds in self.resources.values() for r in kinds.values()):
            _rewrite(held, assigned)
        _answer(handler, 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": answers})

    def _match(self, kind: str, if_none_exist: str) -> str | None:
        if not if_none_exist:
            return None
        name, _, wanted = if_none_exist.partition("=")
        assert name == "identifier", if_none_exist
        system, _, value = wanted.partition("|")
        system, value = unquote(system), unquote(value)
        for resource_id, resource in self.resources.get(kind, {}).items():
            for identifier in resource.get("identifier", []):
                if identifier.get("system") == system and identifier.get("value") == value:
                    return resource_id
        return None


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def _rewrite(node: Any, assigned: dict[str, str]) -> None:
    if isinstance(node, dict):
        if node.get("reference") in assigned:
            node["reference"] = assigned[node["reference"]]
        for value in node.values():
            _rewrite(value, assigned)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value, assigned)


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _answer(
    handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], content_type: str = FHIR_JSON
) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
