"""Browser sign-in at the local issuer over real HTTP: the authorization code flow with PKCE for the storefront,
ending in tokens the platform's verifier accepts, and every faulty request refused with its OAuth error."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from support import free_port

from fusion.auth import STAFF_SCOPES, TokenVerifier
from fusion.local.issuer import IssuerKey, IssuerServer
from fusion.local.sign_in import CODE_TTL_SECONDS, QUICK_PICKS, AuthorizationCodes, BrowserClient, pkce_challenge

AUDIENCE = "fusioncommerce-sign-in-test"
CLIENT = BrowserClient("fusioncommerce-storefront", "http://127.0.0.1:8123")
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
STATE = "state-af0ifjsldkj"


class Clock:
    """The codes' clock, moved by the test instead of waiting for a code to expire."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict[str, object]:
        found: dict[str, object] = json.loads(self.body)
        return found

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Issuer:
    server: IssuerServer
    clock: Clock

    def call(self, method: str, path: str, form: Mapping[str, str | list[str]] | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", urlsplit(self.server.issuer).port, timeout=5)
        body = urlencode(form, doseq=True).encode() if form is not None else None
        sent = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        sent.update(headers or {})
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    clock = Clock()  # only ever moved forward: a code issued after a move is valid for its own TTL
    server = IssuerServer(IssuerKey.load_or_create(tmp_path_factory.mktemp("issuer")), free_port(), audience=AUDIENCE,
                          client=CLIENT,
                          codes=AuthorizationCodes(clock=clock)).start()
    yield Issuer(server, clock)
    server.stop()


def authorization_request(**overrides: str) -> dict[str, str]:
    request = {"response_type": "code", "client_id": CLIENT.client_id, "redirect_uri": CLIENT.redirect_uri,
               "state": STATE, "code_challenge": pkce_challenge(VERIFIER), "code_challenge_method": "S256",
               "scope": "openid", "nonce": "n-0S6_WzA2Mj"}
    return {name: value for name, value in {**request, **overrides}.items() if value}


def redirected_to(answer: Answer) -> dict[str, str]:
    """The query of a 303 to the storefront's callback."""
    assert answer.status == 303, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CLIENT.redirect_uri
    return {name: values[0] for name, values in parse_qs(location.query).items()}


def signed_in_code(issuer: Issuer, **choice: str | list[str]) -> str:
    answer = issuer.call("POST", "/authorize", {**authorization_request(), **(choice or {"kind": "customer",
                                                                                         "name": "alice"})})
    back = redirected_to(answer)
    assert back["state"] == STATE
    return back["code"]


def exchange(issuer: Issuer, code: str, **overrides: str) -> Answer:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT.redirect_uri,
            "client_id": CLIENT.client_id, "code_verifier": VERIFIER, **overrides}
    return issuer.call("POST", "/token", form)


def refused(answer: Answer, error: str, saying: str) -> None:
    assert answer.status == 400, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"] == error
    assert saying in str(answer.json()["error_description"])


def test_the_discovery_document_advertises_the_code_flow_with_s256(issuer: Issuer) -> None:
    document = issuer.call("GET", "/.well-known/openid-configuration").json()
    assert document["authorization_endpoint"] == f"{issuer.server.issuer}/authorize"
    assert document["token_endpoint"] == f"{issuer.server.issuer}/token"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]


def test_the_sign_in_page_offers_customers_and_staff_with_every_scope(issuer: Issuer) -> None:
    answer = issuer.call("GET", "/authorize?" + urlencode(authorization_request()))
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    page = answer.text
    assert "<script" not in page
    for name in QUICK_PICKS:
        assert f'name="pick" value="{name}"' in page
    for scope in STAFF_SCOPES:
        assert f'name="staff_scope" value="{scope}"' in page
    assert f'name="state" value="{STATE}"' in page
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and f"form-action 'self' {CLIENT.origin}" in policy
    assert issuer.call("GET", "/sign-in.css").status == 200


def test_a_customer_signs_in_and_the_platform_accepts_the_token(issuer: Issuer) -> None:
    answer = exchange(issuer, signed_in_code(issuer, kind="customer", name="typed-name", pick="bob"))
    assert answer.status == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert answer.headers["Cache-Control"] == "no-store"
    principal = TokenVerifier(issuer.server.issuer, AUDIENCE).principal(f"Bearer {tokens['access_token']}")
    assert (principal.kind, principal.subject, principal.scopes) == ("customer", "bob", frozenset())
    identity = TokenVerifier(issuer.server.issuer, CLIENT.client_id).claims(str(tokens["id_token"]))
    assert identity["sub"] == "bob" and identity["nonce"] == "n-0S6_WzA2Mj"


def test_staff_sign_in_with_the_scopes_ticked(issuer: Issuer) -> None:
    chosen = [STAFF_SCOPES[0], STAFF_SCOPES[-1]]
    tokens = exchange(issuer, signed_in_code(issuer, kind="staff", name="sam", staff_scope=chosen)).json()
    principal = TokenVerifier(issuer.server.issuer, AUDIENCE).principal(f"Bearer {tokens['access_token']}")
    assert (principal.kind, principal.subject, principal.scopes) == ("staff", "sam", frozenset(chosen))


@pytest.mark.parametrize(("choice", "saying"), [
    ({"kind": "staff", "name": "sam"}, "at least one scope"),
    ({"kind": "staff", "name": "sam", "staff_scope": "root:everything"}, "unknown staff scope"),
    ({"kind": "customer", "name": "<alice>"}, "the name must be"),
    ({"kind": "customer", "name": ""}, "the name must be"),
], ids=["no scope", "unknown scope", "bad name", "no name"])
def test_a_faulty_choice_shows_the_page_again_with_the_problem(issuer: Issuer, choice: dict[str, str],
                                                               saying: str) -> None:
    answer = issuer.call("POST", "/authorize", {**authorization_request(), **choice})
    assert answer.status == 400 and "Location" not in answer.headers
    assert saying in answer.text and 'role="alert"' in answer.text


def test_a_wrong_verifier_is_refused_and_spends_the_code(issuer: Issuer) -> None:
    code = signed_in_code(issuer)
    refused(exchange(issuer, code, code_verifier="x" * 43), "invalid_grant", "code_verifier does not match")
    refused(exchange(issuer, code), "invalid_grant", "unknown or was already used")


def test_a_code_is_good_once(issuer: Issuer) -> None:
    code = signed_in_code(issuer)
    assert exchange(issuer, code).status == 200
    refused(exchange(issuer, code), "invalid_grant", "unknown or was already used")


def test_an_expired_code_is_refused(issuer: Issuer) -> None:
    code = signed_in_code(issuer)
    issuer.clock.now += CODE_TTL_SECONDS
    refused(exchange(issuer, code), "invalid_grant", "expired")


def test_an_unknown_code_is_refused(issuer: Issuer) -> None:
    refused(exchange(issuer, "not-a-code"), "invalid_grant", "unknown")


def test_a_token_request_for_another_redirect_uri_is_refused(issuer: Issuer) -> None:
    code = signed_in_code(issuer)
    refused(exchange(issuer, code, redirect_uri="http://127.0.0.1:8123/elsewhere"), "invalid_grant", "redirect_uri")


def test_a_token_request_of_another_client_is_refused(issuer: Issuer) -> None:
    refused(exchange(issuer, signed_in_code(issuer), client_id="someone-else"), "invalid_client", "someone-else")


@pytest.mark.parametrize(("overrides", "error", "saying"), [
    ({"grant_type": "password"}, "unsupported_grant_type", "authorization_code"),
    ({"code_verifier": "short"}, "invalid_request", "43 to 128"),
    ({"code_verifier": ""}, "invalid_request", "code_verifier required"),
], ids=["other grant", "short verifier", "no verifier"])
def test_malformed_token_requests_are_refused(issuer: Issuer, overrides: dict[str, str], error: str,
                                              saying: str) -> None:
    refused(exchange(issuer, "some-code", **overrides), error, saying)


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/auth/callback", "http://127.0.0.1:8123/auth/callback/../steal", "http://127.0.0.1:9999/auth/callback",
])
def test_a_foreign_redirect_uri_is_told_to_the_browser_not_redirected_to(issuer: Issuer, redirect_uri: str) -> None:
    for answer in (issuer.call("GET", "/authorize?" + urlencode(authorization_request(redirect_uri=redirect_uri))),
                   issuer.call("POST", "/authorize", {**authorization_request(redirect_uri=redirect_uri),
                                                      "kind": "customer", "name": "alice"})):
        assert answer.status == 400 and "Location" not in answer.headers
        assert "is not registered" in answer.text and CLIENT.redirect_uri in answer.text


def test_an_unknown_client_is_told_to_the_browser(issuer: Issuer) -> None:
    answer = issuer.call("GET", "/authorize?" + urlencode(authorization_request(client_id="someone-else")))
    assert answer.status == 400 and "Location" not in answer.headers
    assert "is not this issuer&#x27;s client" in answer.text


@pytest.mark.parametrize(("overrides", "error", "saying"), [
    ({"code_challenge": ""}, "invalid_request", "code_challenge must be"),
    ({"code_challenge_method": "plain"}, "invalid_request", "S256"),
    ({"response_type": "token"}, "unsupported_response_type", "code"),
], ids=["no challenge", "plain challenge", "implicit flow"])
def test_a_faulty_request_goes_back_to_the_callback_with_the_error(issuer: Issuer, overrides: dict[str, str],
                                                                   error: str, saying: str) -> None:
    back = redirected_to(issuer.call("GET", "/authorize?" + urlencode(authorization_request(**overrides))))
    assert back["error"] == error and saying in back["error_description"] and back["state"] == STATE
    assert "code" not in back


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/token"])
def test_cors_answers_only_the_storefront_origin(issuer: Issuer, path: str) -> None:
    def allowed_origin(origin: str, method: str) -> str | None:
        form = {"grant_type": "authorization_code"} if method == "POST" else None
        answer = issuer.call(method, path, form, headers={"Origin": origin})
        assert "Origin" in answer.headers["Vary"]
        return answer.headers["Access-Control-Allow-Origin"]

    method = "POST" if path == "/token" else "GET"
    assert allowed_origin(CLIENT.origin, method) == CLIENT.origin
    assert allowed_origin(CLIENT.origin, "OPTIONS") == CLIENT.origin
    for other in ("https://evil.example", "http://localhost:8123", "null"):
        assert allowed_origin(other, method) is None
        assert allowed_origin(other, "OPTIONS") is None


def test_the_sign_in_page_is_not_shared_across_origins(issuer: Issuer) -> None:
    answer = issuer.call("GET", "/authorize?" + urlencode(authorization_request()), headers={"Origin": CLIENT.origin})
    assert answer.headers["Access-Control-Allow-Origin"] is None
