"""The local OIDC issuer of `fusion dev`: a signing key kept under the state folder, the discovery
document and JWKS served over HTTP, tokens minted for customers and staff (`fusion token`), and the
browser sign-in of the storefront (authorization code + PKCE, see fusion.local.sign_in).

Development only: anyone who can read the state folder can mint any token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fusion.auth import STAFF_SCOPES
from fusion.config import DEFAULT_AUDIENCE, storefront_origin
from fusion.local.sign_in import (
    STYLE,
    AuthorizationCodes,
    AuthorizationRequest,
    BrowserClient,
    Grant,
    NotRedirectable,
    OAuthError,
    error_page,
    sign_in_page,
    token_request,
    who_signs_in,
)
from fusion.variables import default_of

KEY_FILE = "issuer/signing-key.pem"
ADDRESS_FILE = "issuer/address.json"  # where the running `fusion dev` serves it, for `fusion token`
DEFAULT_TTL_SECONDS = 3600


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class IssuerKey:
    private: rsa.RSAPrivateKey

    @classmethod
    def load_or_create(cls, state_dir: Path) -> IssuerKey:
        path = state_dir / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path} does not hold an RSA private key")
            return cls(loaded)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.touch(mode=0o600)
        path.write_bytes(pem)
        return cls(key)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
        # RFC 7638 thumbprint as the key id, so a new key gets a new kid.
        thumbprint = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest()
        kid = base64.urlsafe_b64encode(thumbprint[:12]).rstrip(b"=").decode()
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}

    def mint(self, issuer: str, audience: str, subject: str, scopes: Iterable[str] = (),
             ttl_seconds: int = DEFAULT_TTL_SECONDS, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now, "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()), **claims,
        }
        if scopes:
            payload["scope"] = " ".join(scopes)
        return jwt.encode(payload, self.private, algorithm="RS256", headers={"kid": self.public_jwk()["kid"]})


ROUTER_SUBJECT = "system:serviceaccount:fusioncommerce:local-router"
DELIVERY_TOKEN_SECONDS = 600


class DeliveryTokens:
    """The local router's sender identity, as Knative Eventing's dispatcher has one: a short-lived token
    per function audience, minted again before it expires."""

    def __init__(self, key: IssuerKey, issuer: str):
        self.key = key
        self.issuer = issuer
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def authorization(self, audience: str) -> str:
        with self._lock:
            token, expires = self._tokens.get(audience, ("", 0.0))
            if time.time() > expires - 60:
                token = self.key.mint(self.issuer, audience, ROUTER_SUBJECT, ttl_seconds=DELIVERY_TOKEN_SECONDS)
                self._tokens[audience] = (token, time.time() + DELIVERY_TOKEN_SECONDS)
        return f"Bearer {token}"


def remember_issuer(state_dir: Path, issuer: str, audience: str) -> None:
    path = state_dir / ADDRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"issuer": issuer, "audience": audience}))


def remembered_issuer(state_dir: Path) -> tuple[str, str] | None:
    """(issuer, audience) of the local platform last started with this state folder."""
    try:
        found = json.loads((state_dir / ADDRESS_FILE).read_text())
        return str(found["issuer"]), str(found["audience"])
    except (OSError, ValueError, KeyError):
        return None


def discovery(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],  # a public client: PKCE, no secret
        "scopes_supported": ["openid", *STAFF_SCOPES],
        "subject_types_supported": ["public"],
    }


def storefront_client(env: Mapping[str, str]) -> BrowserClient:
    """The storefront as the local issuer's browser client, from STOREFRONT_OIDC_CLIENT_ID and STOREFRONT_ORIGIN."""
    client_id = env.get("STOREFRONT_OIDC_CLIENT_ID", "").strip() or default_of("STOREFRONT_OIDC_CLIENT_ID")
    return BrowserClient(client_id, storefront_origin(env))


MAX_FORM_BYTES = 16 * 1024
SIGN_IN_PAGE_POLICY = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"


class IssuerServer:
    """Serves discovery, JWKS and the browser sign-in (authorization code + PKCE for `client`) on host:port
    in a background thread; `public_url` is the issuer's name (what tokens carry as `iss`), by default its
    loopback address. Tokens it issues carry `audience`, as those of `fusion token`."""

    def __init__(self, key: IssuerKey, port: int, host: str = "127.0.0.1", public_url: str | None = None,
                 audience: str = DEFAULT_AUDIENCE, client: BrowserClient | None = None,
                 codes: AuthorizationCodes | None = None):
        self.key = key
        self.issuer = (public_url or f"http://127.0.0.1:{port}").rstrip("/")
        self.audience = audience
        self.client = client
        self.codes = codes or AuthorizationCodes()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)

    def start(self) -> IssuerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def tokens_for(self, grant: Grant) -> dict[str, Any]:
        """The token response of a redeemed code: the access token `fusion token` would mint, and an ID token."""
        access = self.key.mint(self.issuer, self.audience, grant.subject, grant.scopes)
        claims: dict[str, Any] = {"azp": grant.client_id, **({"nonce": grant.nonce} if grant.nonce else {})}
        identity = self.key.mint(self.issuer, grant.client_id, grant.subject, **claims)
        return {"access_token": access, "token_type": "Bearer", "expires_in": DEFAULT_TTL_SECONDS,
                "id_token": identity, "scope": " ".join(("openid", *grant.scopes))}


def _handler_for(server: IssuerServer) -> type[BaseHTTPRequestHandler]:
    documents = {
        "/.well-known/openid-configuration": json.dumps(discovery(server.issuer)).encode(),
        "/jwks.json": json.dumps({"keys": [server.key.public_jwk()]}).encode(),
    }
    cors_paths = {"/.well-known/openid-configuration", "/token"}  # what the storefront's pages call

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path == "/authorize":
                self._authorize_page(parse_qs(query, keep_blank_values=False))
            elif path == "/sign-in.css":
                self._send(200, STYLE.encode(), "text/css; charset=utf-8")
            else:
                body = documents.get(path)
                self._send(200 if body is not None else 404, body or b'{"error":"not_found"}', "application/json")

        def do_POST(self) -> None:
            path = self.path.partition("?")[0]
            try:
                form = self._form()
            except OAuthError as exc:
                self._send_json(400, exc.body())
                return
            if path == "/authorize":
                self._authorize(form)
            elif path == "/token":
                self._token(form)
            else:
                self._send_json(404, {"error": "not_found"})

        def do_OPTIONS(self) -> None:
            """CORS preflight: only the storefront's origin is told it may call."""
            self.send_response(204)
            if self._cors_origin():
                self.send_header("Access-Control-Allow-Methods", "GET, POST")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _authorize_page(self, query: dict[str, list[str]]) -> None:
            try:
                request = AuthorizationRequest.of(query, server.client)
            except NotRedirectable as exc:
                self._send_html(400, error_page(str(exc)))
                return
            except OAuthError as exc:
                self._redirect(self._refused_request(query, exc))
                return
            self._send_html(200, sign_in_page(request))

        def _authorize(self, form: dict[str, list[str]]) -> None:
            try:
                request = AuthorizationRequest.of(form, server.client)
            except NotRedirectable as exc:
                self._send_html(400, error_page(str(exc)))
                return
            except OAuthError as exc:
                self._redirect(self._refused_request(form, exc))
                return
            try:
                subject, scopes = who_signs_in(form)
            except ValueError as exc:
                self._send_html(400, sign_in_page(request, str(exc)))
                return
            self._redirect(request.redirect(code=server.codes.issue(request, subject, scopes)))

        @staticmethod
        def _refused_request(fields: dict[str, list[str]], error: OAuthError) -> str:
            """Where a well-addressed but faulty request is sent back to, with the OAuth error."""
            assert server.client is not None  # AuthorizationRequest.of checked the client first
            params = {"error": error.error, "error_description": error.description}
            state = (fields.get("state") or [""])[0]
            return f"{server.client.redirect_uri}?{urlencode({**params, **({'state': state} if state else {})})}"

        def _token(self, form: dict[str, list[str]]) -> None:
            try:
                given = token_request(form, server.client)
                grant = server.codes.redeem(given["code"], given["client_id"], given["redirect_uri"],
                                            given["code_verifier"])
            except OAuthError as exc:
                self._send_json(400, exc.body())
                return
            self._send_json(200, server.tokens_for(grant))

        def _form(self) -> dict[str, list[str]]:
            if self.headers.get_content_type() != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
            raw = self.headers.get("Content-Length") or "0"
            length = int(raw) if raw.isdigit() else -1
            if not 0 <= length <= MAX_FORM_BYTES:
                raise OAuthError("invalid_request", f"the body must be at most {MAX_FORM_BYTES} bytes")
            try:
                return parse_qs(self.rfile.read(length).decode("utf-8"), strict_parsing=False)
            except UnicodeDecodeError:
                raise OAuthError("invalid_request", "the body must be UTF-8") from None

        def _cors_origin(self) -> str | None:
            """The storefront's origin when it is the caller of a path it may call across origins."""
            headers, path = getattr(self, "headers", None), getattr(self, "path", "")  # unset on a garbled request
            origin = headers.get("Origin") if headers is not None else None
            allowed = server.client is not None and origin == server.client.origin
            return origin if allowed and path.partition("?")[0] in cors_paths else None

        def end_headers(self) -> None:
            origin = self._cors_origin()
            if origin:
                self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
            super().end_headers()

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _send_json(self, status: int, document: dict[str, Any]) -> None:
            # Token responses are never cached (RFC 6749 section 5.1).
            self._send(status, json.dumps(document).encode(), "application/json", Cache_Control="no-store",
                       Pragma="no-cache")

        def _send_html(self, status: int, page: str) -> None:
            form_targets = f" {server.client.origin}" if server.client else ""
            self._send(status, page.encode(), "text/html; charset=utf-8", Cache_Control="no-store",
                       Content_Security_Policy=f"{SIGN_IN_PAGE_POLICY}; form-action 'self'{form_targets}",
                       X_Content_Type_Options="nosniff", Referrer_Policy="no-referrer")

        def _redirect(self, location: str) -> None:
            self.send_response(303)
            self.send_header("Location", location)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
