"""A small local stand-in for the Stripe API, for tests (Stripe cannot be reached from here).

It answers the endpoints SecondRead calls, with the JSON shapes Stripe documents, to the real
``stripe`` SDK (pointed at it with ``base_addresses={"api": double.url}``):

- ``POST /v1/accounts``, ``GET /v1/accounts/{id}``, ``POST /v1/account_links``
- ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``,
  ``POST /v1/checkout/sessions/{id}/expire``
- ``POST /v1/refunds``

and serves two pages a browser visits instead of Stripe's: ``/pay/{session}`` (a checkout page
with a Pay button that completes the session and redirects to its ``success_url``) and
``/onboard/{account}`` (finishes onboarding and redirects to the account link's ``return_url``).

Every API request is recorded (method, path, headers, decoded form body), so tests can assert
the ``Stripe-Account`` header, amounts and idempotency keys; ``on_api_request``, when set, is
called with each one (on the double's thread) before it is answered, e.g. to look at what the
caller's database connection is doing while it waits. Like Stripe, a repeated
``Idempotency-Key`` answers with the first response. ``event()`` builds event payloads and
``signature_header()`` signs them exactly as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.serving import serve_in_thread


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` for ``payload``: ``t=<ts>,v1=<hex HMAC-SHA256("<ts>.<payload>")>``."""
    ts = int(time.time()) if timestamp is None else timestamp
    signed = f"{ts}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe's form encoding (``a[b][0][c]=v``) into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            nxt = parts[index + 1] if not last else None
            container: Any = [] if nxt is not None and nxt.isdigit() else {}
            if isinstance(node, list):
                position = int(part)
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                else:
                    if node[position] is None:
                        node[position] = container
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, container)
    return root


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def stripe_account(self) -> str | None:
        return self.headers.get("stripe-account")

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class StripeDouble:
    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Which connected account each session was created on (the Stripe-Account header).
    session_accounts: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set to an error type ("card_error", "invalid_request_error", ...) to fail the next refund.
    fail_next_refund: str | None = None
    on_api_request: Callable[[RecordedRequest], None] | None = None
    _idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> StripeDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                double._dispatch(self, "GET")

            def do_POST(self) -> None:
                double._dispatch(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def calls(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # --- the API --------------------------------------------------------------------------------

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        path = split.path
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        query = split.query if method == "GET" else raw
        body = _nest(parse_qsl(query, keep_blank_values=True))
        if path.startswith("/pay/") or path.startswith("/onboard/"):
            self._page(handler, method, path, body)
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        recorded = RecordedRequest(method, path, headers, body)
        if self.on_api_request is not None:
            self.on_api_request(recorded)
        with self._lock:
            self.requests.append(recorded)
            if not headers.get("authorization", "").startswith("Bearer sk_"):
                status, data = 401, _error("invalid_request_error", "Invalid API Key provided.")
            else:
                key = headers.get("idempotency-key")
                if method == "POST" and key and (path, key) in self._idempotent:
                    status, data = self._idempotent[(path, key)]
                else:
                    status, data = self._api(method, path, body, headers.get("stripe-account"))
                    if method == "POST" and key:
                        self._idempotent[(path, key)] = (status, data)
        payload = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Request-Id", _new_id("req"))
        handler.end_headers()
        handler.wfile.write(payload)

    def _api(
        self, method: str, path: str, body: dict[str, Any], account: str | None
    ) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        now = int(time.time())
        if method == "POST" and path == "/v1/accounts":
            acct = {
                "id": _new_id("acct"),
                "object": "account",
                "type": body.get("type", "standard"),
                "charges_enabled": False,
                "details_submitted": False,
                "payouts_enabled": False,
                "created": now,
                "metadata": body.get("metadata", {}),
            }
            self.accounts[acct["id"]] = acct
            return 200, acct
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "accounts"]:
            found = self.accounts.get(parts[2])
            return (200, found) if found else (404, _error("invalid_request_error", "No such account"))
        if method == "POST" and path == "/v1/account_links":
            if body.get("account") not in self.accounts:
                return 400, _error("invalid_request_error", "No such account")
            link = {
                "object": "account_link",
                "created": now,
                "expires_at": now + 300,
                "url": f"{self.url}/onboard/{body['account']}",
            }
            self.account_links[body["account"]] = {**body, **link}
            return 200, link
        if method == "POST" and path == "/v1/checkout/sessions":
            if account not in self.accounts:
                return 400, _error("invalid_request_error", "No such account (Stripe-Account header)")
            item = body["line_items"][0]
            amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
            session_id = _new_id("cs")
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": body.get("mode"),
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": amount,
                "amount_subtotal": amount,
                "currency": item["price_data"]["currency"],
                "client_reference_id": body.get("client_reference_id"),
                "metadata": body.get("metadata", {}),
                "payment_intent": None,
                "success_url": body.get("success_url"),
                "cancel_url": body.get("cancel_url"),
                "created": now,
                "expires_at": now + 24 * 3600,
                "livemode": False,
                "url": f"{self.url}/pay/{session_id}",
            }
            self.sessions[session_id] = session
            self.session_accounts[session_id] = account or ""
            return 200, session
        if len(parts) >= 4 and parts[:3] == ["v1", "checkout", "sessions"]:
            found_session = self.sessions.get(parts[3])
            if found_session is None or self.session_accounts.get(parts[3]) != account:
                return 404, _error("invalid_request_error", "No such checkout.session")
            if method == "POST" and parts[4:] == ["expire"]:
                if found_session["status"] != "open":
                    return 400, _error("invalid_request_error", "Only open sessions can be expired.")
                found_session["status"] = "expired"
            return 200, found_session
        if method == "POST" and path == "/v1/refunds":
            if self.fail_next_refund:
                kind, self.fail_next_refund = self.fail_next_refund, None
                return 402, _error(kind, "The refund could not be made.")
            intent = body.get("payment_intent")
            paid = next((s for s in self.sessions.values() if s["payment_intent"] == intent), None)
            if paid is None or self.session_accounts[paid["id"]] != account:
                return 404, _error("invalid_request_error", "No such payment_intent")
            refund = {
                "id": _new_id("re"),
                "object": "refund",
                "amount": int(body.get("amount") or paid["amount_total"]),
                "currency": paid["currency"],
                "payment_intent": intent,
                "charge": paid["charge"],
                "reason": body.get("reason"),
                "metadata": body.get("metadata", {}),
                "status": "succeeded",
                "created": now,
            }
            self.refunds[refund["id"]] = refund
            return 200, refund
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path})")

    # --- pages a browser visits ------------------------------------------------------------

    def pay(self, session_id: str) -> dict[str, Any]:
        """Complete a session as if the customer paid by card (what the Pay button does)."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] == "open":
                session["status"] = "complete"
                session["payment_status"] = "paid"
                session["payment_intent"] = _new_id("pi")
                session["charge"] = _new_id("ch")
            return session

    def onboard(self, account_id: str) -> dict[str, Any]:
        with self._lock:
            account = self.accounts[account_id]
            account.update(charges_enabled=True, details_submitted=True, payouts_enabled=True)
            return account

    def _page(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: dict[str, Any]) -> None:
        kind, _, ident = path.strip("/").partition("/")
        if kind == "pay":
            session = self.sessions.get(ident)
            if session is None:
                return _html(handler, 404, "<h1>No such checkout session</h1>")
            if method == "POST":
                self.pay(ident)
                return _redirect(handler, session["success_url"].replace("{CHECKOUT_SESSION_ID}", ident))
            amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
            return _html(
                handler,
                200,
                f"<h1>Stripe test checkout</h1><p data-testid='amount'>{html.escape(amount)}</p>"
                f"<form method='post'><button type='submit'>Pay</button></form>"
                f"<p><a href='{html.escape(session['cancel_url'])}'>Back</a></p>",
            )
        link = self.account_links.get(ident)
        if link is None:
            return _html(handler, 404, "<h1>No such account link</h1>")
        if method == "POST":
            self.onboard(ident)
            return _redirect(handler, link["return_url"])
        return _html(
            handler,
            200,
            "<h1>Stripe test onboarding</h1>"
            "<form method='post'><button type='submit'>Finish set-up</button></form>",
        )

    # --- events -------------------------------------------------------------------------------

    def event(
        self, event_type: str, obj: dict[str, Any], *, account: str | None, created: int | None = None
    ) -> bytes:
        """An event payload as Stripe posts it to a Connect webhook endpoint."""
        return json.dumps(
            {
                "id": _new_id("evt"),
                "object": "event",
                "api_version": "2026-10-28.endive",
                "account": account,
                "created": int(time.time()) if created is None else created,
                "type": event_type,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "data": {"object": obj},
            }
        ).encode()

    def charge_for(self, session_id: str, *, amount_refunded: int) -> dict[str, Any]:
        """A charge object (for ``charge.refunded``) of a paid session."""
        session = self.sessions[session_id]
        return {
            "id": session["charge"],
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded >= session["amount_total"],
            "currency": session["currency"],
            "payment_intent": session["payment_intent"],
            "metadata": session["metadata"],
        }


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _html(handler: BaseHTTPRequestHandler, status: int, body: str) -> None:
    head = "<meta charset='utf-8'><title>Stripe test double</title>"
    data = f"<!doctype html><html><head>{head}</head><body>{body}</body></html>".encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _redirect(handler: BaseHTTPRequestHandler, location: str) -> None:
    handler.send_response(303)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()
