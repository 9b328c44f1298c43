"""Token verification against a real issuer (the local one, over HTTP) and the access rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from support import free_port

from fusion import auth
from fusion.auth import CUSTOMER, PUBLIC, SIGNED, Principal, TokenVerifier, customer_or_staff, scopes_in, staff
from fusion.errors import Forbidden, Unauthenticated, Unavailable
from fusion.local.issuer import IssuerKey, IssuerServer

AUDIENCE = "fusioncommerce-test"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerServer]:
    server = IssuerServer(IssuerKey.load_or_create(tmp_path_factory.mktemp("issuer")), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def verifier(issuer: IssuerServer) -> TokenVerifier:
    return TokenVerifier(issuer.issuer, AUDIENCE)


def mint(issuer: IssuerServer, subject: str = "alice", **overrides: object) -> str:
    return issuer.key.mint(issuer.issuer, AUDIENCE, subject, **overrides)  # type: ignore[arg-type]


def test_a_customer_token_names_the_customer(issuer: IssuerServer, verifier: TokenVerifier) -> None:
    principal = verifier.principal(f"Bearer {mint(issuer)}")
    assert principal == Principal("customer", "alice", frozenset())
    assert principal.customer_id == "alice"


def test_a_token_with_a_staff_scope_is_staff(issuer: IssuerServer, verifier: TokenVerifier) -> None:
    principal = verifier.principal(f"Bearer {mint(issuer, 'ops', scopes=['catalog:write', 'openid'])}")
    assert principal.kind == "staff" and principal.customer_id is None
    assert principal.holds("catalog:write") and not principal.holds("payments:refund")


def test_no_header_is_anonymous(verifier: TokenVerifier) -> None:
    assert verifier.principal(None).kind == "anonymous"


def _part(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(claims: dict[str, object]) -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."


def _hs256_with_public_key(claims: dict[str, object], issuer: IssuerServer) -> str:
    """The key-confusion forgery: HMAC keyed with the issuer's public key, which anyone can fetch."""
    jwk = issuer.key.public_jwk()
    signing_input = f"{_part({'alg': 'HS256', 'kid': jwk['kid']})}.{_part(claims)}"
    secret = json.dumps(jwk).encode()
    return f"{signing_input}.{_part(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _forged_cases(issuer: IssuerServer, tmp_path: Path) -> dict[str, str]:
    now = int(time.time())
    other = IssuerKey.load_or_create(tmp_path / "other")
    kid = issuer.key.public_jwk()["kid"]
    good = {"iss": issuer.issuer, "aud": AUDIENCE, "sub": "mallory", "exp": now + 600}
    return {
        "not a JWT": "Bearer not-a-token",
        "wrong scheme": f"Basic {mint(issuer)}",
        "expired": f"Bearer {mint(issuer, ttl_seconds=-120)}",
        "not yet valid": f"Bearer {mint(issuer, nbf=now + 600)}",
        "wrong issuer": f"Bearer {issuer.key.mint('https://evil.example', AUDIENCE, 'alice')}",
        "wrong audience": f"Bearer {issuer.key.mint(issuer.issuer, 'another-app', 'alice')}",
        "alg none": f"Bearer {_unsigned(good)}",
        "HS256 with the public key": f"Bearer {_hs256_with_public_key(good, issuer)}",
        "signed by another key, same kid": "Bearer " + jwt.encode(good, other.private, algorithm="RS256",
                                                                  headers={"kid": kid}),
        "unknown kid": f"Bearer {other.mint(issuer.issuer, AUDIENCE, 'alice')}",
        "no subject": "Bearer " + jwt.encode({k: v for k, v in good.items() if k != "sub"}, issuer.key.private,
                                             algorithm="RS256", headers={"kid": kid}),
    }


@pytest.mark.parametrize("case", [
    "not a JWT", "wrong scheme", "expired", "not yet valid", "wrong issuer", "wrong audience", "alg none",
    "HS256 with the public key", "signed by another key, same kid", "unknown kid", "no subject",
])
def test_forged_tokens_are_refused(case: str, issuer: IssuerServer, verifier: TokenVerifier,
                                   tmp_path: Path) -> None:
    with pytest.raises(Unauthenticated):
        verifier.principal(_forged_cases(issuer, tmp_path)[case])


def test_a_rotated_key_is_picked_up_without_a_restart(issuer: IssuerServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old = IssuerServer(IssuerKey.load_or_create(tmp_path / "old"), free_port()).start()
    try:
        verifier = TokenVerifier(old.issuer, AUDIENCE)
        assert verifier.principal(f"Bearer {mint(old)}").subject == "alice"
        rotated = IssuerKey.load_or_create(tmp_path / "new")
        monkeypatch.setattr(auth, "_fetch_json", _serving(old.issuer, rotated))
        monkeypatch.setattr(auth, "UNKNOWN_KEY_REFETCH_SECONDS", 0.0)
        token = rotated.mint(old.issuer, AUDIENCE, "bob")
        assert verifier.principal(f"Bearer {token}").subject == "bob"
    finally:
        old.stop()


def _serving(issuer: str, key: IssuerKey) -> object:
    def fetch(url: str) -> object:
        if url.endswith("/jwks.json"):
            return {"keys": [key.public_jwk()]}
        return {"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}

    return fetch


def test_an_unreachable_issuer_is_unavailable_not_unauthenticated(issuer: IssuerServer) -> None:
    verifier = TokenVerifier(f"http://127.0.0.1:{free_port()}", AUDIENCE)
    with pytest.raises(Unavailable):
        verifier.principal(f"Bearer {mint(issuer)}")


ALICE = Principal("customer", "alice")
OPS = Principal("staff", "ops", frozenset({"orders:manage"}))
NOBODY = Principal("anonymous")


@pytest.mark.parametrize(("access", "principal", "refusal"), [
    (PUBLIC, NOBODY, None),
    (SIGNED, NOBODY, None),
    (CUSTOMER, NOBODY, Unauthenticated),
    (CUSTOMER, ALICE, None),
    (CUSTOMER, OPS, Forbidden),
    (staff("orders:manage"), OPS, None),
    (staff("orders:manage"), ALICE, Forbidden),
    (staff("catalog:write"), OPS, Forbidden),
    (staff("catalog:write"), NOBODY, Unauthenticated),
    (customer_or_staff("orders:manage"), ALICE, None),
    (customer_or_staff("orders:manage"), OPS, None),
    (customer_or_staff("payments:refund"), OPS, Forbidden),
])
def test_access_rules(access: auth.Access, principal: Principal, refusal: type[Exception] | None) -> None:
    if refusal is None:
        access.admit(principal)
    else:
        with pytest.raises(refusal):
            access.admit(principal)


def test_unknown_staff_scopes_are_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="unknown staff scope"):
        staff("everything")


@pytest.mark.parametrize(("claims", "claim", "found"), [
    ({"scope": "a b"}, "scope", ["a", "b"]),
    ({"scp": ["a", "b"]}, "scp", ["a", "b"]),
    ({"realm_access": {"roles": ["orders:manage"]}}, "realm_access.roles", ["orders:manage"]),
    ({"scope": 7}, "scope", []),
    ({}, "realm_access.roles", []),
])
def test_scopes_are_read_from_the_configured_claim(claims: dict[str, object], claim: str, found: list[str]) -> None:
    assert scopes_in(claims, claim) == found


def test_a_token_verified_once_is_not_verified_again_until_it_expires(
    issuer: IssuerServer, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = mint(issuer, ttl_seconds=60)
    assert verifier.claims(token)["sub"] == "alice"
    verified: list[str] = []
    original = verifier._verify
    monkeypatch.setattr(verifier, "_verify", lambda t: verified.append(t) or original(t))
    assert verifier.claims(token)["sub"] == "alice" and verified == []  # its signature checked once
    later = time.time() + 60 + auth.LEEWAY_SECONDS + 1
    monkeypatch.setattr(auth.time, "time", lambda: later)
    verifier.claims(token)  # past its time it is verified again (PyJWT's clock then decides)
    assert verified == [token]


def test_a_remembered_token_is_verified_again_once_the_keys_would_be_fetched_again(
    issuer: IssuerServer, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = mint(issuer)
    verifier.claims(token)
    verified: list[str] = []
    original = verifier._verify
    monkeypatch.setattr(verifier, "_verify", lambda t: verified.append(t) or original(t))
    started = time.monotonic()
    monkeypatch.setattr(auth.time, "monotonic", lambda: started + auth.KEYS_LIFETIME_SECONDS + 1)
    verifier.claims(token)
    assert verified == [token]


def test_a_forged_token_is_never_remembered(issuer: IssuerServer, verifier: TokenVerifier, tmp_path: Path) -> None:
    forged = _forged_cases(issuer, tmp_path)["signed by another key, same kid"].removeprefix("Bearer ")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.claims(forged)
    assert forged not in verifier._verified
