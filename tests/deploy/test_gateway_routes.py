"""The Gateway and the HTTPRoutes in front of the cluster-local Knative Services: valid against the released
Gateway API CRDs, and routing exactly as the registry (and so the local gateway) does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from deploy_support import committed, mutated, of_kind, require_schema

from fusion.declare import find_route
from fusion.knative.environments import Environment, environments
from fusion.knative.gateway import (
    GATEWAY_NAME,
    HTTP_LISTENER,
    HTTPS_LISTENER,
    LOCAL_GATEWAY,
    REDIRECT_ROUTE,
    function_host,
)
from fusion.knative.resources import Manifest
from fusion.knative.schemas import CORE_SCHEMAS, SchemaKey, load_crd_schemas, validate
from fusion.knative.serving import VISIBILITY_LABEL
from fusion.registry import FunctionSpec
from fusion.web import ApiError

GATEWAY_KINDS = ("Gateway", "HTTPRoute", "ReferenceGrant")


@pytest.fixture(scope="module")
def gateway_schemas() -> dict[SchemaKey, dict[str, Any]]:
    return load_crd_schemas(require_schema("gateway-api"))


def _gateway_documents(env: Environment) -> list[Manifest]:
    return [doc for doc in committed(env) if doc["kind"] in GATEWAY_KINDS]


def test_the_gateway_and_routes_validate_against_the_released_crds(
    documents: list[Manifest], gateway_schemas: dict[SchemaKey, dict[str, Any]]
) -> None:
    ours = [doc for doc in documents if doc["kind"] in GATEWAY_KINDS]
    assert {doc["kind"] for doc in ours} == set(GATEWAY_KINDS)
    assert {(d["apiVersion"], d["kind"]) for d in ours if d["kind"] != "ReferenceGrant"} <= set(gateway_schemas)
    assert validate(ours, {**gateway_schemas, **CORE_SCHEMAS}) == []


def _function_routes(documents: list[Manifest]) -> list[Manifest]:
    return [route for route in of_kind(documents, "HTTPRoute") if route["metadata"]["name"] != REDIRECT_ROUTE]


def _route(documents: list[Manifest]) -> Manifest:
    return _function_routes(documents)[0]


MISTAKES: dict[str, Callable[[list[Manifest]], None]] = {
    "unknown path match type": lambda docs: _route(docs)["spec"]["rules"][0]["matches"][0]["path"].update(
        type="Glob"),
    "unknown method": lambda docs: _route(docs)["spec"]["rules"][0]["matches"][0].update(method="FETCH"),
    "backend port as text": lambda docs: _route(docs)["spec"]["rules"][0]["backendRefs"][0].update(port="80"),
    "misspelt rule field": lambda docs: _route(docs)["spec"]["rules"][0].update(backendRef=[]),
    "listener without a protocol": lambda docs: of_kind(docs, "Gateway")[0]["spec"]["listeners"][0].pop(
        "protocol"),
    "grant without a source namespace": lambda docs: of_kind(docs, "ReferenceGrant")[0]["spec"]["from"][0].pop(
        "namespace"),
}


@pytest.mark.parametrize("mistake", MISTAKES, ids=list(MISTAKES))
def test_validation_catches(mistake: str, gateway_schemas: dict[SchemaKey, dict[str, Any]]) -> None:
    documents = mutated(_gateway_documents(environments()["production"]))
    MISTAKES[mistake](documents)
    assert validate(documents, {**gateway_schemas, **CORE_SCHEMAS}) != []


def _http_functions(specs: list[FunctionSpec]) -> list[FunctionSpec]:
    return [spec for spec in specs if spec.kind == "http" and spec.routes]


def test_every_http_function_is_cluster_local_and_routed_through_knatives_local_gateway(
    documents: list[Manifest], env: Environment, specs: list[FunctionSpec]
) -> None:
    ksvcs = {d["metadata"]["name"]: d for d in of_kind(documents, "Service", "serving.knative.dev")}
    rules = [rule for route in _function_routes(documents) for rule in route["spec"]["rules"]]
    hosts = [filt["urlRewrite"]["hostname"] for rule in rules for filt in rule["filters"]]
    assert sorted(hosts) == sorted(function_host(spec, env) for spec in _http_functions(specs))
    for spec in _http_functions(specs):
        assert ksvcs[spec.name]["metadata"]["labels"][VISIBILITY_LABEL] == "cluster-local"
    backends = [backend for rule in rules for backend in rule["backendRefs"]]
    assert {(b["namespace"], b["name"], b["port"]) for b in backends} == {
        (LOCAL_GATEWAY.namespace, LOCAL_GATEWAY.service, LOCAL_GATEWAY.port)}
    (grant,) = of_kind(documents, "ReferenceGrant")
    assert grant["metadata"]["namespace"] == LOCAL_GATEWAY.namespace
    assert grant["spec"]["from"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                      "namespace": env.namespace}]
    for route in of_kind(documents, "HTTPRoute"):
        assert [parent["name"] for parent in route["spec"]["parentRefs"]] == [GATEWAY_NAME]


def _listeners(route: Manifest) -> list[str]:
    return [parent.get("sectionName", "every listener") for parent in route["spec"]["parentRefs"]]


def test_the_functions_are_served_over_https_only_and_plain_http_redirects(documents: list[Manifest]) -> None:
    (gateway,) = of_kind(documents, "Gateway")
    assert {listener["name"] for listener in gateway["spec"]["listeners"]} == {HTTP_LISTENER, HTTPS_LISTENER}
    for route in _function_routes(documents):
        assert _listeners(route) == [HTTPS_LISTENER], route["metadata"]["name"]
    on_http = [route for route in of_kind(documents, "HTTPRoute") if HTTP_LISTENER in _listeners(route)]
    assert [route["metadata"]["name"] for route in on_http] == [REDIRECT_ROUTE]
    (only_rule,) = on_http[0]["spec"]["rules"]
    assert "matches" not in only_rule and "backendRefs" not in only_rule  # every path, sent nowhere but HTTPS
    assert only_rule["filters"] == [{"type": "RequestRedirect",
                                     "requestRedirect": {"scheme": "https", "statusCode": 301}}]


def test_a_function_route_on_the_plain_http_listener_is_found(specs: list[FunctionSpec]) -> None:
    from fusion.knative.checks import semantic_problems

    env = environments()["production"]
    documents = mutated(committed(env))
    _route(documents)["spec"]["parentRefs"][0].pop("sectionName")
    assert any("not on 'https' only" in problem for problem in semantic_problems(documents, env, specs))


def _matches(match: dict[str, Any], method: str, path: str) -> bool:
    if match["method"] != method:
        return False
    wanted = match["path"]
    return path == wanted["value"] if wanted["type"] == "Exact" else re.fullmatch(wanted["value"], path) is not None


def cluster_host_for(documents: list[Manifest], method: str, path: str) -> str | None:
    """The function host the HTTPRoutes send a request to (Gateway API: an exact path match wins over a
    regular expression), or None: the Gateway answers 404."""
    found: dict[str, list[str]] = {"Exact": [], "RegularExpression": []}
    for route in _function_routes(documents):
        for rule in route["spec"]["rules"]:
            host = rule["filters"][0]["urlRewrite"]["hostname"]
            for match in rule["matches"]:
                if _matches(match, method, path):
                    found[match["path"]["type"]].append(host)
    candidates = found["Exact"] or found["RegularExpression"]
    assert len(set(candidates)) <= 1, f"{method} {path} goes to several functions: {candidates}"
    return candidates[0] if candidates else None


def _samples(spec: FunctionSpec) -> list[tuple[str, str]]:
    samples = []
    for route in spec.routes:
        path = re.sub(r"\{\w+\}", "a1-b2", route.path)
        samples += [(route.method, path)] + ([(route.method, path + "/")] if path != "/" else [])
    return samples


INTERNAL = [("GET", "/health"), ("GET", "/metrics"), ("POST", "/_functions/reserve-stock"), ("GET", "/healthz"),
            ("GET", "/products/a/b"), ("DELETE", "/products")]


def test_the_cluster_routes_every_request_where_the_local_gateway_does(
    documents: list[Manifest], env: Environment, specs: list[FunctionSpec]
) -> None:
    http = _http_functions(specs)
    for spec in http:
        for method, path in _samples(spec):
            local, _ = find_route(http, method, path)
            assert cluster_host_for(documents, method, path) == function_host(local, env), (method, path)
    for method, path in INTERNAL:
        with pytest.raises(ApiError):
            find_route(http, method, path)
        assert cluster_host_for(documents, method, path) is None, (method, path)


def test_a_route_that_drifts_from_the_registry_is_found(specs: list[FunctionSpec]) -> None:
    from fusion.knative.checks import semantic_problems

    env = environments()["production"]
    documents = mutated(committed(env))
    _route(documents)["spec"]["rules"].pop()
    assert any("HTTPRoutes do not route" in problem for problem in semantic_problems(documents, env, specs))
