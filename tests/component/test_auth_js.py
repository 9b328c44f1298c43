"""auth.js, the storefront's sign-in module, run in Node against the real local issuer: PKCE as RFC 7636
computes it, the whole code flow, the state check, expiry, the API calls it makes, and where tokens go."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import free_port

from fusion.auth import STAFF_SCOPES
from fusion.local.issuer import IssuerKey, IssuerServer
from fusion.local.sign_in import BrowserClient, pkce_challenge

ROOT = Path(__file__).resolve().parents[2]
AUTH_JS = ROOT / "functions" / "storefront" / "static" / "auth.js"
FLOW = Path(__file__).with_name("auth_js_flow.mjs")
CLIENT = BrowserClient("fusioncommerce-storefront", "http://127.0.0.1:8124")
AUDIENCE = "fusioncommerce-auth-js-test"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node (20 or later) on PATH")


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    server = IssuerServer(IssuerKey.load_or_create(tmp_path_factory.mktemp("issuer")), free_port(), audience=AUDIENCE,
                          client=CLIENT).start()
    try:
        run = subprocess.run(["node", str(FLOW), str(AUTH_JS), server.issuer, CLIENT.origin, CLIENT.client_id,
                              " ".join(STAFF_SCOPES)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        observed: dict[str, Any] = json.loads(run.stdout)
        observed["issuer"] = server.issuer
        yield observed
    finally:
        server.stop()


def test_the_challenge_is_rfc_7636s(seen: dict[str, Any]) -> None:
    assert seen["rfc7636Challenge"] == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_sign_in_needs_the_configuration_first(seen: dict[str, Any]) -> None:
    assert "auth.configure(config) must be called first" in seen["beforeConfigure"]
    assert seen["signedOutUser"] is None


def test_sign_in_asks_for_a_code_with_an_s256_challenge_of_its_stored_verifier(seen: dict[str, Any]) -> None:
    request = seen["authorizeRequest"]
    assert seen["authorizeEndpoint"] == f"{seen['issuer']}/authorize"  # read from the discovery document
    assert request["response_type"] == "code" and request["code_challenge_method"] == "S256"
    assert request["client_id"] == CLIENT.client_id and request["redirect_uri"] == CLIENT.redirect_uri
    assert request["scope"] == "openid" and len(request["state"]) >= 43 and request["nonce"]
    assert request["code_challenge"] == seen["challengeOfStoredVerifier"]
    assert 43 <= seen["verifierLength"] <= 128
    assert "prompt" not in request  # nobody was signed in, so there is no session to step away from


def test_the_callback_signs_staff_in_and_returns_to_where_they_were(seen: dict[str, Any]) -> None:
    assert seen["callbackHadCode"] and seen["returnTo"] == "/shop/cart?step=2"
    assert seen["urlAfterCallback"] == f"{CLIENT.origin}/auth/callback"  # the code is out of the address bar
    assert seen["pendingAfterCallback"] is None
    assert seen["user"] == {"sub": "sam", "scopes": [STAFF_SCOPES[0]], "staff": True}
    assert seen["hasToken"] and not seen["tokenInAnUrl"]


def test_fetch_api_sends_the_bearer_token_and_json(seen: dict[str, Any]) -> None:
    call = seen["apiCall"]
    assert call["path"] == "/orders" and seen["apiCallBearerIsToken"]
    assert call["headers"]["content-type"] == "application/json" and call["headers"]["accept"] == "application/json"
    assert json.loads(call["body"]) == {"productId": "p-1", "quantity": 2}


def test_fetch_api_keeps_the_token_on_this_origin(seen: dict[str, Any]) -> None:
    assert seen["foreignFetch"].startswith("TypeError: fetchApi takes a path on this origin")
    assert seen["protocolRelativeFetch"].startswith("TypeError")


def test_a_401_signs_in_again_except_for_a_token_just_issued(seen: dict[str, Any]) -> None:
    assert "refuses the token just issued" in seen["freshTokenRefused"]
    assert seen["staleTokenRefused"] == "SignInRequired: signing in again"
    assert seen["signInAgainRequest"]["response_type"] == "code"
    assert seen["tokenAfter401"] is None


def test_an_expired_token_is_not_used(seen: dict[str, Any]) -> None:
    assert seen["expiredToken"] is None and seen["expiredUser"] is None


def test_return_paths_stay_on_this_origin(seen: dict[str, Any]) -> None:
    assert seen["foreignReturnTo"] == "/"


def test_an_answer_to_another_sign_in_is_refused(seen: dict[str, Any]) -> None:
    assert "not started in this tab" in seen["forgedState"]


def test_a_refusal_by_the_provider_is_reported(seen: dict[str, Any]) -> None:
    assert seen["providerError"] == "Error: sign-in refused: nope"


def test_a_customer_signs_in_and_a_replayed_callback_is_refused(seen: dict[str, Any]) -> None:
    assert seen["customerReturnTo"] == "/shop/orders"
    assert seen["customer"] == {"sub": "alice", "scopes": [], "staff": False}
    assert "not started in this tab" in seen["replayedCallback"]


def test_staff_sign_in_over_a_customer_session_makes_the_provider_ask_who(seen: dict[str, Any]) -> None:
    assert seen["staffAfterCustomerPrompt"] == "login"


def test_sign_out_forgets_the_tokens(seen: dict[str, Any]) -> None:
    assert seen["afterSignOut"] == {"token": None, "user": None}


def test_the_module_never_logs(seen: dict[str, Any]) -> None:
    assert "console." not in AUTH_JS.read_text()


@pytest.mark.parametrize("verifier", ["a" * 43, "~._-" * 32, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"])
def test_the_browser_and_the_issuer_compute_the_same_challenge(verifier: str) -> None:
    script = (f"const auth = await import({json.dumps(AUTH_JS.as_uri())});"
              f"process.stdout.write(await auth.pkceChallenge({json.dumps(verifier)}));")
    run = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout == pkce_challenge(verifier)
