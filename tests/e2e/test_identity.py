"""Identity on the running platform: forged tokens are refused at the door, real ones from its issuer work."""

from __future__ import annotations

import base64
import json
import time

import pytest
from platform_runner import RunningPlatform

from fusion.local.issuer import IssuerKey


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def forged_headers(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    assert platform.tokens is not None
    key, issuer, audience = platform.tokens.key, platform.tokens.issuer, platform.tokens.audience
    stranger = IssuerKey.load_or_create(tmp_path_factory.mktemp("stranger"))
    later = int(time.time()) + 600
    claims = {"iss": issuer, "aud": audience, "sub": "mallory", "exp": later}
    return {
        "no token": {},
        "malformed": {"Authorization": "Bearer not.a.jwt"},
        "expired": {"Authorization": f"Bearer {key.mint(issuer, audience, 'mallory', ttl_seconds=-120)}"},
        "not yet valid": {"Authorization": f"Bearer {key.mint(issuer, audience, 'mallory', nbf=later)}"},
        "wrong issuer": {"Authorization": f"Bearer {key.mint('https://evil.example', audience, 'mallory')}"},
        "wrong audience": {"Authorization": f"Bearer {key.mint(issuer, 'another-api', 'mallory')}"},
        "alg none": {"Authorization": f"Bearer {_unsigned(claims)}"},
        "wrongly signed": {"Authorization": f"Bearer {stranger.mint(issuer, audience, 'mallory')}"},
    }


CASES = ["no token", "malformed", "expired", "not yet valid", "wrong issuer", "wrong audience", "alg none",
         "wrongly signed"]


@pytest.mark.parametrize("case", CASES)
def test_forged_tokens_are_refused_with_401(case: str, platform: RunningPlatform,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    headers = forged_headers(platform, tmp_path_factory)[case]
    platform_tokens, platform.tokens = platform.tokens, None  # send exactly these headers
    try:
        status, body = platform.request("GET", "orders", "/orders", headers=headers)
        refund_status, _ = platform.request("POST", "payments", "/payments/00000000-0000-0000-0000-000000000000/refund",
                                            {}, headers)
    finally:
        platform.tokens = platform_tokens
    assert status == 401 and body["error"] in ("unauthorized", "invalid_token"), body
    assert refund_status == 401


def test_a_real_customer_token_reads_only_its_own_orders(platform: RunningPlatform) -> None:
    assert platform.tokens is not None
    status, listed = platform.request("GET", "orders", "/orders",
                                      headers={"Authorization": f"Bearer {platform.tokens.customer('nobody-yet')}"})
    assert status == 200 and listed == []
