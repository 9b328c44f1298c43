"""The local OIDC issuer of `fusion dev`: a signing key kept under the state folder, the discovery
document and JWKS served over HTTP, and tokens minted for customers and staff (`fusion token`).

Development only: anyone who can read the state folder can mint any token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    }


class IssuerServer:
    """Serves discovery and JWKS on host:port in a background thread; `public_url` is the issuer's name
    (what tokens carry as `iss`), by default its loopback address."""

    def __init__(self, key: IssuerKey, port: int, host: str = "127.0.0.1", public_url: str | None = None):
        self.key = key
        self.issuer = (public_url or f"http://127.0.0.1:{port}").rstrip("/")
        documents = {
            "/.well-known/openid-configuration": json.dumps(discovery(self.issuer)).encode(),
            "/jwks.json": json.dumps({"keys": [key.public_jwk()]}).encode(),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = documents.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body or b'{"error":"not_found"}')

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)

    def start(self) -> IssuerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
