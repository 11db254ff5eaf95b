"""A small local OpenID Connect provider for tests (a hospital's Entra ID, Okta or Keycloak
cannot be reached from here), answering what an OpenID Connect relying party calls:

- ``GET /.well-known/openid-configuration`` (discovery) and ``GET /jwks`` (its public key);
- ``GET /authorize``: checks the client and redirect address, signs the current ``user`` in
  without asking (a browser passes through it), and redirects back with a code and the state;
- ``POST /token``: checks the client secret (basic or post), the code, its redirect address
  and the PKCE verifier (S256), and answers with an ID token signed RS256 with its real key.

``fault`` makes the next ID tokens wrong the way an attacker or a broken provider would:
``wrong_issuer``, ``bad_signature`` (signed by another key under the same key id),
``expired``, ``nonce_replay`` (the nonce of an earlier sign-in), ``wrong_audience``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.serving import serve_in_thread

CLIENT_ID = "secondread-test-client"
CLIENT_SECRET = "a-client-secret-from-the-hospital-idp"
KEY_ID = "double-key-1"


@dataclass
class IdentityUser:
    sub: str
    email: str
    email_verified: bool = True
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    name: str = "Hospital User"


@dataclass
class _Code:
    user: IdentityUser
    nonce: str
    redirect_uri: str
    code_challenge: str


@functools.cache
def _provider_keys() -> tuple[RSAKey, RSAKey]:
    """The provider's signing key, and another under the same key id (``bad_signature``). Made
    once per test process: a 2048-bit RSA key takes about 60 ms to make, and each test starts a
    provider of its own."""
    key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"})
    return key, RSAKey.generate_key(2048, parameters={"kid": KEY_ID})


class OidcDouble:
    def __init__(self) -> None:
        self.key, self.other_key = _provider_keys()
        self.user = IdentityUser(sub="u-1", email="nobody@example.org")
        self.fault = ""
        self.nonces: list[str] = []  # every nonce /authorize was given, in order
        self.token_requests = 0
        self._codes: dict[str, _Code] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> OidcDouble:
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def id_token(self, user: IdentityUser, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": user.email,
            "email_verified": user.email_verified,
            "amr": user.amr,
            "name": user.name,
        }
        key = self.key
        if self.fault == "wrong_issuer":
            claims["iss"] = "https://login.attacker.example"
        elif self.fault == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.fault == "nonce_replay":
            claims["nonce"] = self.nonces[0]
        elif self.fault == "wrong_audience":
            claims["aud"] = "another-client"
        elif self.fault == "bad_signature":
            key = self.other_key
        return jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, key)

    # --- HTTP ---------------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return 400, {}, b"unknown client"
        nonce = query.get("nonce", "")
        self.nonces.append(nonce)
        code = secrets.token_urlsafe(16)
        self._codes[code] = _Code(self.user, nonce, query["redirect_uri"], query.get("code_challenge", ""))
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": target}, b""

    def _token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, str], bytes]:
        self.token_requests += 1
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != CLIENT_ID or secret != CLIENT_SECRET:
            return 401, {}, json.dumps({"error": "invalid_client"}).encode()
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or form.get("redirect_uri") != code.redirect_uri:
            return 400, {}, json.dumps({"error": "invalid_grant"}).encode()
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if code.code_challenge and challenge != code.code_challenge:
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "PKCE"}).encode()
        body = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(code.user, code.nonce),
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    body = json.dumps(double.discovery()).encode()
                    self._send(200, {"Content-Type": "application/json"}, body)
                elif parts.path == "/jwks":
                    jwks = {"keys": [double.key.as_dict(private=False)]}
                    self._send(200, {"Content-Type": "application/json"}, json.dumps(jwks).encode())
                elif parts.path == "/authorize":
                    self._send(*double._authorize(dict(parse_qsl(parts.query))))
                else:
                    self._send(404, {}, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if urlsplit(self.path).path == "/token":
                    self._send(*double._token(form, self.headers.get("Authorization", "")))
                else:
                    self._send(404, {}, b"")

        return Handler
