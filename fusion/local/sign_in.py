"""Browser sign-in at the local issuer: the OAuth 2.0 authorization code grant with PKCE (RFC 6749, RFC 7636)
for the storefront, its one public client, and the development sign-in page where anyone picks who to be.

Development only, like the issuer: there is no password, whoever reaches the page chooses the identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from functions.payments.rules import DECLINING_CUSTOMER_PREFIX, UNPAID_CUSTOMER_PREFIX
from functions.storefront.oidc import CALLBACK_PATH
from fusion import auth

CODE_TTL_SECONDS = 60.0
# Customers one click away: the customer id chooses the test card (see functions/payments/rules.py).
QUICK_PICKS = ("alice", "bob", f"{DECLINING_CUSTOMER_PREFIX}dora", f"{UNPAID_CUSTOMER_PREFIX}uma")
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest, unpadded
CODE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 section 4.1
REQUEST_FIELDS = ("response_type", "client_id", "redirect_uri", "state", "code_challenge",
                  "code_challenge_method", "scope", "nonce")


@dataclass(frozen=True)
class BrowserClient:
    """The storefront as an OAuth client: public (no secret), so PKCE S256 proves the code's redeemer,
    and only its own origin's /auth/callback is a redirect URI."""

    client_id: str
    origin: str

    @property
    def redirect_uri(self) -> str:
        return self.origin + CALLBACK_PATH


class OAuthError(Exception):
    """An OAuth error response: `error` is the RFC 6749 code, `description` says what is wrong."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class NotRedirectable(Exception):
    """A request naming an unknown client or redirect URI: told to the person at the browser, never sent
    to the URI it names (RFC 6749 section 4.1.2.1)."""


def single_values(fields: Mapping[str, list[str]], names: Sequence[str]) -> dict[str, str]:
    """The named parameters, each at most once (RFC 6749 section 3.1)."""
    repeated = [name for name in names if len(fields.get(name, [])) > 1]
    if repeated:
        raise OAuthError("invalid_request", f"{repeated[0]} is given more than once")
    return {name: fields[name][0] for name in names if fields.get(name)}


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    scope: str
    nonce: str

    @classmethod
    def of(cls, fields: Mapping[str, list[str]], client: BrowserClient | None) -> AuthorizationRequest:
        """The request, checked: NotRedirectable for the wrong client or redirect URI, OAuthError (to be
        sent back to the redirect URI) for anything else."""
        try:
            given = single_values(fields, REQUEST_FIELDS)
        except OAuthError as exc:
            raise NotRedirectable(exc.description) from None
        if client is None:
            raise NotRedirectable("this issuer has no browser client configured (STOREFRONT_OIDC_CLIENT_ID)")
        if given.get("client_id") != client.client_id:
            raise NotRedirectable(f"client_id {given.get('client_id', '')!r} is not this issuer's client "
                                  f"({client.client_id!r})")
        if given.get("redirect_uri") != client.redirect_uri:
            raise NotRedirectable(f"redirect_uri {given.get('redirect_uri', '')!r} is not registered; the only one "
                                  f"is {client.redirect_uri}")
        request = cls(client.client_id, client.redirect_uri, given.get("state", ""),
                      given.get("code_challenge", ""), given.get("scope", ""), given.get("nonce", ""))
        request.check(given)
        return request

    def check(self, given: Mapping[str, str]) -> None:
        if given.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        if not self.state:
            raise OAuthError("invalid_request", "state is required")
        if given.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256 (PKCE is required)")
        if not CODE_CHALLENGE.match(self.code_challenge):
            raise OAuthError("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier")

    def hidden_fields(self) -> str:
        """The request again, carried by the sign-in form's POST."""
        fields = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "state": self.state, "code_challenge": self.code_challenge, "code_challenge_method": "S256",
                  "scope": self.scope, "nonce": self.nonce}
        return "".join(f'<input type="hidden" name="{name}" value="{escape(value)}">'
                       for name, value in fields.items() if value)

    def redirect(self, **params: str) -> str:
        return f"{self.redirect_uri}?{urlencode({**params, 'state': self.state})}"


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Grant:
    """What a code stands for, and what its redeemer must show again."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    subject: str
    scopes: tuple[str, ...]
    nonce: str
    expires_at: float


class AuthorizationCodes:
    """One-time codes, each bound to its client, redirect URI and PKCE challenge, valid for `ttl` seconds."""

    def __init__(self, ttl: float = CODE_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, request: AuthorizationRequest, subject: str, scopes: tuple[str, ...]) -> str:
        code = secrets.token_urlsafe(32)
        now = self.clock()
        grant = Grant(request.client_id, request.redirect_uri, request.code_challenge, subject, scopes,
                      request.nonce, now + self.ttl)
        with self._lock:
            self._grants = {key: kept for key, kept in self._grants.items() if kept.expires_at > now}
            self._grants[code] = grant
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> Grant:
        """The grant of a code, which is spent whatever else is wrong with the request."""
        with self._lock:
            grant = self._grants.pop(code, None)
        if grant is None:
            raise OAuthError("invalid_grant", "the code is unknown or was already used")
        if self.clock() >= grant.expires_at:
            raise OAuthError("invalid_grant", "the code has expired; sign in again")
        if client_id != grant.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri is not the one the code was issued for")
        if not hmac.compare_digest(pkce_challenge(verifier), grant.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        return grant


def token_request(fields: Mapping[str, list[str]], client: BrowserClient | None) -> dict[str, str]:
    """The checked parameters of a token request (grant_type, code, redirect_uri, client_id, code_verifier)."""
    given = single_values(fields, ("grant_type", "code", "redirect_uri", "client_id", "code_verifier"))
    if given.get("grant_type") != "authorization_code":
        raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code")
    if client is None or given.get("client_id") != client.client_id:
        raise OAuthError("invalid_client", f"client_id {given.get('client_id', '')!r} is not this issuer's client")
    missing = [name for name in ("code", "redirect_uri", "code_verifier") if not given.get(name)]
    if missing:
        raise OAuthError("invalid_request", f"{', '.join(missing)} required")
    if not CODE_VERIFIER.match(given["code_verifier"]):
        raise OAuthError("invalid_request", "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
    return given


def who_signs_in(form: Mapping[str, list[str]]) -> tuple[str, tuple[str, ...]]:
    """The subject and staff scopes the sign-in form chose; ValueError names what is wrong."""
    kind = (form.get("kind") or [""])[0]
    subject = ((form.get("pick") or form.get("name") or [""])[0]).strip()
    if not SUBJECT.match(subject):
        raise ValueError("the name must be 1 to 128 letters, digits or . _ @ + -, starting with a letter or digit")
    if kind == "customer":
        return subject, ()
    if kind != "staff":
        raise ValueError("choose a customer or staff sign-in")
    scopes = tuple(dict.fromkeys(form.get("staff_scope", [])))
    unknown = [scope for scope in scopes if scope not in auth.STAFF_SCOPES]
    if unknown:
        raise ValueError(f"unknown staff scope {unknown[0]!r}")
    if not scopes:
        raise ValueError("a staff sign-in needs at least one scope ticked")
    return subject, scopes


STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.4rem; } fieldset { border: 1px solid #c9cfd9; border-radius: 6px; margin: 1rem 0; padding: 1rem; }
.note { color: #5b6475; font-size: .9rem; } .error { color: #a11; font-weight: 600; }
button { font: inherit; padding: .3rem .8rem; margin: .2rem .2rem .2rem 0; cursor: pointer; }
input[type=text] { font: inherit; padding: .25rem; } label.scope { display: block; }
"""


def sign_in_page(request: AuthorizationRequest, error: str = "") -> str:
    """The development sign-in page: a customer by name (or one of the quick picks), or staff with scopes."""
    hidden = request.hidden_fields()
    picks = "".join(f'<button type="submit" name="pick" value="{escape(name)}">{escape(name)}</button>'
                    for name in QUICK_PICKS)
    scopes = "".join(f'<label class="scope"><input type="checkbox" name="staff_scope" value="{escape(scope)}"> '
                     f"{escape(scope)}</label>" for scope in auth.STAFF_SCOPES)
    problem = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — FusionCommerce (development)</title><link rel="stylesheet" href="/sign-in.css"></head>
<body><main>
<h1>Sign in to FusionCommerce</h1>
<p class="note">The local development issuer: no password, you choose who you are.</p>{problem}
<form method="post" action="/authorize"><fieldset><legend>Customer</legend>{hidden}
<input type="hidden" name="kind" value="customer">
<label>Customer id <input type="text" name="name" autocomplete="off" maxlength="128"></label>
<button type="submit">Sign in</button>
<p class="note">Or one click: {picks}<br><code>{DECLINING_CUSTOMER_PREFIX}…</code> pays with a declining card,
<code>{UNPAID_CUSTOMER_PREFIX}…</code> never pays.</p></fieldset></form>
<form method="post" action="/authorize"><fieldset><legend>Staff</legend>{hidden}
<input type="hidden" name="kind" value="staff">
<label>Name <input type="text" name="name" value="staff" autocomplete="off" maxlength="128"></label>
{scopes}<button type="submit">Sign in as staff</button></fieldset></form>
</main></body></html>
"""


def error_page(message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in refused</title>
<link rel="stylesheet" href="/sign-in.css"></head>
<body><main><h1>This sign-in request is refused</h1><p class="error" role="alert">{escape(message)}</p></main></body>
</html>
"""
