"""Who is calling, and who may call what.

Callers prove who they are with a bearer OIDC JWT (RS256 or ES256), verified against the issuer's
JWKS found by OIDC discovery. A token's `sub` is the customer id; its scopes (read from a
configurable claim, since Keycloak, Auth0 and Dex put them in different places) grant staff areas.
A token holding any staff scope is a staff token. Each HTTP function declares its `Access` in the
registry; `fusion.declare` enforces it before the function runs.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fusion.errors import Forbidden, Invalid, NotFound, Unauthenticated, Unavailable

if TYPE_CHECKING:
    import jwt

ALGORITHMS = ["RS256", "ES256"]
STAFF_SCOPES = (
    "catalog:write",
    "inventory:write",
    "orders:manage",
    "payments:refund",
    "campaigns:write",
    "shipping:manage",
    "operations:manage",
)
FETCH_TIMEOUT_SECONDS = 3.0
KEYS_LIFETIME_SECONDS = 300.0  # keys are fetched again after this, so a rotation is picked up
UNKNOWN_KEY_REFETCH_SECONDS = 10.0  # an unknown `kid` refetches at most this often (no fetch storm)
LEEWAY_SECONDS = 30  # clock skew allowed on exp / nbf / iat
VERIFIED_TOKENS_KEPT = 4096  # per verifier


@dataclass(frozen=True)
class Principal:
    kind: Literal["anonymous", "customer", "staff"]
    subject: str | None = None
    scopes: frozenset[str] = frozenset()

    def holds(self, scope: str) -> bool:
        return self.kind == "staff" and scope in self.scopes

    @property
    def customer_id(self) -> str | None:
        """The customer this caller is, or None for staff and anonymous callers."""
        return self.subject if self.kind == "customer" else None


ANONYMOUS = Principal("anonymous")


@dataclass(frozen=True)
class Access:
    """Who may call an HTTP function (declared with it in the registry)."""

    public: bool = False  # anyone, no token needed
    customers: bool = False  # any customer token (the function checks ownership)
    scope: str | None = None  # staff holding this scope
    signed: bool = False  # a machine proving itself with a signature the function checks (webhooks)

    def admit(self, caller: Principal) -> None:
        """Raise Unauthenticated (no caller) or Forbidden (a caller without the right)."""
        if self.public or self.signed:
            return
        if caller.kind == "anonymous":
            raise Unauthenticated("a bearer token is required", code="unauthorized")
        if self.customers and caller.kind == "customer":
            return
        if self.scope is not None and caller.holds(self.scope):
            return
        raise Forbidden(f"this token may not call this function ({self.describe()})")

    def describe(self) -> str:
        if self.public:
            return "public"
        if self.signed:
            return "signed by the calling machine"
        parts = ["a customer (own resources)"] if self.customers else []
        if self.scope:
            parts.append(f"staff with {self.scope}")
        return " or ".join(parts)


PUBLIC = Access(public=True)
CUSTOMER = Access(customers=True)
SIGNED = Access(signed=True)


def staff(scope: str) -> Access:
    if scope not in STAFF_SCOPES:
        raise ValueError(f"unknown staff scope {scope!r}; one of {', '.join(STAFF_SCOPES)}")
    return Access(scope=scope)


def customer_or_staff(scope: str) -> Access:
    return Access(customers=True, scope=staff(scope).scope)


_caller: contextvars.ContextVar[Principal] = contextvars.ContextVar("caller", default=ANONYMOUS)


def caller() -> Principal:
    """Who is calling the HTTP function running now."""
    return _caller.get()


def acting_as(principal: Principal) -> contextvars.Token[Principal]:
    return _caller.set(principal)


def stop_acting(token: contextvars.Token[Principal]) -> None:
    _caller.reset(token)


def customer_id_for(claimed: str | None, field: str) -> str:
    """The customer a request acts for: a customer acts for itself (naming another is refused),
    staff must name the customer."""
    who = caller()
    if who.kind == "customer" and who.subject is not None:
        if claimed is not None and claimed != who.subject:
            raise Forbidden(f"{field} must be the signed-in customer's own id", field=field)
        return who.subject
    if not claimed:
        raise Invalid(field, "is required when staff act for a customer")
    return claimed


def visible_customer() -> str | None:
    """Whose resources a listing may show: a customer sees only its own; None means staff, who see all."""
    return caller().customer_id


def ensure_owner(owner: str | None, what: str, ident: object) -> None:
    """Another customer's resource does not exist for this caller: 404, revealing nothing."""
    who = caller()
    if who.kind == "customer" and owner != who.subject:
        raise NotFound(what, ident)


def _fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise Unavailable(f"the token issuer cannot be reached: {exc}", code="issuer_unavailable") from None


class SigningKeys:
    """The issuer's public keys by `kid`, from its JWKS, refreshed after a while or on an unknown key."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self._jwks_uri: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _discover(self) -> str:
        if self._jwks_uri is None:
            document = _fetch_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                raise Unavailable("the issuer's discovery document names another issuer", code="issuer_unavailable")
            self._jwks_uri = str(document["jwks_uri"])
        return self._jwks_uri

    def _refresh(self) -> None:
        import jwt  # imported on first use: it brings `cryptography`, which would slow every cold start

        jwks = jwt.PyJWKSet.from_dict(_fetch_json(self._discover()))
        self._keys = {key.key_id: key for key in jwks.keys if key.key_id}
        self._fetched_at = time.monotonic()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > KEYS_LIFETIME_SECONDS or (kid not in self._keys and age > UNKNOWN_KEY_REFETCH_SECONDS):
                self._refresh()
            found = self._keys.get(kid)
        if found is None:
            raise Unauthenticated("the token is signed with a key the issuer does not publish", code="invalid_token")
        return found


class TokenVerifier:
    def __init__(self, issuer: str, audience: str, scope_claim: str = "scope", keys: SigningKeys | None = None):
        self.issuer = issuer
        self.audience = audience
        self.scope_claim = scope_claim
        self.keys = keys or SigningKeys(issuer)
        # Tokens already verified, with their claims and when: a caller (the event plane above all) sends the
        # same token many times, and only its times need checking again. Verified again after
        # KEYS_LIFETIME_SECONDS, so a key the issuer withdrew stops admitting its tokens as it would uncached.
        # Bounded; the least recently used is forgotten first.
        self._verified: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def principal(self, authorization: str | None) -> Principal:
        """The caller an `Authorization` header names: anonymous without one, 401 for a bad one."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be `Bearer <token>`", code="invalid_token")
        return self._principal_of(self.claims(token.strip()))

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, issuer, audience and times are checked; 401 otherwise."""
        with self._verified_lock:
            known = self._verified.get(token)
            if known is not None:
                self._verified.move_to_end(token)
        if known is not None and _still_valid(*known):
            return known[0]
        claims = self._verify(token)
        with self._verified_lock:
            self._verified[token] = (claims, time.monotonic())
            if len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted", code="invalid_token")
            key = self.keys.key(str(header.get("kid", "")))
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iss", "aud", "sub"]},
            )
            return claims
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}", code="invalid_token") from None

    def _principal_of(self, claims: Mapping[str, Any]) -> Principal:
        subject = str(claims["sub"])
        scopes = frozenset(scopes_in(claims, self.scope_claim))
        kind: Literal["customer", "staff"] = "staff" if scopes & set(STAFF_SCOPES) else "customer"
        return Principal(kind, subject, scopes)


def _still_valid(claims: Mapping[str, Any], verified_at: float) -> bool:
    """Whether a token verified at `verified_at` (monotonic) is still admitted without verifying it again: its
    times (with the leeway it was verified with), and the age of the keys it was verified with."""
    now = time.time()
    return (time.monotonic() - verified_at < KEYS_LIFETIME_SECONDS and float(claims["exp"]) + LEEWAY_SECONDS > now
            and float(claims.get("nbf", 0)) - LEEWAY_SECONDS <= now)


def scopes_in(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The scopes at `claim` (a dotted path such as `realm_access.roles`): a space-separated string or a list."""
    value: Any = claims
    for part in claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


_verifier: TokenVerifier | None = None
_verifier_lock = threading.Lock()


DELIVERY_AUDIENCE_PREFIX = "functions.fusioncommerce/"
_delivery_verifiers: dict[tuple[str, str], TokenVerifier] = {}
_delivery_keys: dict[str, SigningKeys] = {}


def delivery_audience(function: str) -> str:
    """The audience of the event plane's tokens for one function (a Trigger's `subscriber.audience`)."""
    return DELIVERY_AUDIENCE_PREFIX + function


def admit_delivery(function: str, authorization: str | None) -> str:
    """Only the eventing data plane delivers events: a token of its issuer for this function's audience.

    Returns the sender (the token's subject); raises Unauthenticated otherwise.
    """
    from fusion.config import settings

    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("deliveries need the event plane's bearer token", code="unauthorized")
    issuer, audience = settings().eventing_oidc_issuer, delivery_audience(function)
    with _verifier_lock:
        keys = _delivery_keys.setdefault(issuer, SigningKeys(issuer))
        checker = _delivery_verifiers.setdefault((issuer, audience), TokenVerifier(issuer, audience, keys=keys))
    return str(checker.claims(token.strip())["sub"])


def verifier() -> TokenVerifier:
    """The process's verifier, for the configured issuer and audience."""
    global _verifier
    from fusion.config import settings

    config = settings()
    with _verifier_lock:
        if _verifier is None or (_verifier.issuer, _verifier.audience) != (config.oidc_issuer, config.oidc_audience):
            _verifier = TokenVerifier(config.oidc_issuer, config.oidc_audience, config.oidc_scope_claim)
        return _verifier
