"""The one way in from outside: a Gateway API Gateway and HTTPRoutes rendered from the registry.

Every HTTP function is a cluster-local Knative Service (serving.VISIBILITY_LABEL), so it has no public URL;
its Kubernetes Service of the same name is an ExternalName pointing at Knative's local gateway, and Gateway
API implementations do not route to ExternalName Services. Each route therefore goes to Knative's local
gateway itself, rewriting the Host to the function's cluster-local name (`<function>.<namespace>.svc.
cluster.local`), by which that gateway picks the function, as it does for any in-cluster caller; a
ReferenceGrant in the local gateway's namespace lets our HTTPRoutes name its Service.

Assumed: Envoy Gateway (GatewayClass `eg`) for the public Gateway, and Knative Serving's Gateway API
networking layer (net-gateway-api) with its local gateway served by Envoy Gateway as the Service
`knative-internal` in `envoy-gateway-system`. Another implementation is a change of LocalGateway and
GATEWAY_CLASS below (docs/operations.md).

Only the declared routes are matched: the functions' /health, /metrics and /_functions/* stay internal.
They are served on the HTTPS listener only (bearer tokens and sign-in codes travel in them); the HTTP
listener answers every request with a permanent redirect to the same URL over HTTPS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fusion.knative.environments import Environment
from fusion.knative.resources import Manifest, dns_name, labels, metadata
from fusion.registry import FunctionSpec, Route

GATEWAY_API = "gateway.networking.k8s.io/v1"
REFERENCE_GRANT_API = "gateway.networking.k8s.io/v1beta1"
GATEWAY_NAME = "fusioncommerce"
GATEWAY_CLASS = "eg"  # Envoy Gateway's usual GatewayClass
TLS_SECRET = "fusioncommerce-tls"  # the certificate of the public host, e.g. from cert-manager
RULES_PER_ROUTE = 16  # the HTTPRoute CRD's maximum number of rules
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
REDIRECT_ROUTE = "https-redirect"
_PARAMETER = re.compile(r"\{\w+\}")


@dataclass(frozen=True)
class LocalGateway:
    """The Service through which Knative serves its cluster-local Services (net-gateway-api's local gateway)."""

    namespace: str = "envoy-gateway-system"
    service: str = "knative-internal"
    port: int = 80


LOCAL_GATEWAY = LocalGateway()


def public_host(env: Environment) -> str:
    return urlsplit(env.public_base_url).hostname or env.public_base_url


def gateway(env: Environment) -> Manifest:
    """The public Gateway: HTTP, and HTTPS with the host's certificate; only our namespace's routes attach."""
    same = {"namespaces": {"from": "Same"}}
    host = public_host(env)
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": metadata(GATEWAY_NAME, env.namespace, labels(GATEWAY_NAME, "gateway")),
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [
                {"name": HTTP_LISTENER, "protocol": "HTTP", "port": 80, "hostname": host, "allowedRoutes": same},
                {"name": HTTPS_LISTENER, "protocol": "HTTPS", "port": 443, "hostname": host, "allowedRoutes": same,
                 "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]}},
            ],
        },
    }


def parent_ref(listener: str) -> dict[str, str]:
    """One listener of the public Gateway, for an HTTPRoute's parentRefs."""
    return {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME, "sectionName": listener}


def https_redirect(env: Environment) -> Manifest:
    """The only route of the HTTP listener: every request is sent to the same URL over HTTPS (301)."""
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": metadata(REDIRECT_ROUTE, env.namespace, labels(REDIRECT_ROUTE, "route")),
        "spec": {
            "parentRefs": [parent_ref(HTTP_LISTENER)],
            "hostnames": [public_host(env)],
            "rules": [{"filters": [{"type": "RequestRedirect",
                                    "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
        },
    }


def reference_grant(env: Environment, local: LocalGateway = LOCAL_GATEWAY) -> Manifest:
    """Lets this namespace's HTTPRoutes send to Knative's local gateway Service, in its own namespace."""
    name = dns_name(env.namespace, "routes")
    return {
        "apiVersion": REFERENCE_GRANT_API,
        "kind": "ReferenceGrant",
        "metadata": metadata(name, local.namespace, labels(name, "gateway")),
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": env.namespace}],
            "to": [{"group": "", "kind": "Service", "name": local.service}],
        },
    }


def path_matches(route: Route) -> list[dict[str, str]]:
    """The paths as Gateway API matches them, what `Route.pattern` accepts (a parameter is one path segment;
    a trailing slash is allowed): exact ones, or a regular expression for a path with parameters."""
    if not _PARAMETER.search(route.path):
        slashed = [route.path + "/"] if route.path != "/" else []
        return [{"type": "Exact", "value": path} for path in (route.path, *slashed)]
    pieces = _PARAMETER.split(route.path)
    return [{"type": "RegularExpression",
             "value": "^" + "[^/]+".join(re.escape(piece) for piece in pieces) + "/?$"}]


def function_host(spec: FunctionSpec, env: Environment) -> str:
    """The cluster-local name of a function's Knative Service."""
    return f"{spec.name}.{env.namespace}.svc.cluster.local"


def rule(spec: FunctionSpec, env: Environment, local: LocalGateway = LOCAL_GATEWAY) -> dict[str, Any]:
    """The routes of one function, sent to its Knative Service through the local gateway."""
    return {
        "matches": [{"path": path, "method": route.method} for route in spec.routes for path in path_matches(route)],
        "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": function_host(spec, env)}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": local.service, "namespace": local.namespace,
                         "port": local.port}],
    }


def http_routes(env: Environment, specs: Iterable[FunctionSpec], service: str) -> list[Manifest]:
    """The HTTPRoutes of one service's HTTP functions (several when it has more than RULES_PER_ROUTE)."""
    routed = [spec for spec in specs if spec.service == service and spec.kind == "http" and spec.routes]
    chunks = [routed[i:i + RULES_PER_ROUTE] for i in range(0, len(routed), RULES_PER_ROUTE)]
    routes = []
    for number, chunk in enumerate(chunks, start=1):
        name = service if number == 1 else f"{service}-{number}"
        routes.append({
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": metadata(name, env.namespace, labels(name, "route", service)),
            "spec": {
                "parentRefs": [parent_ref(HTTPS_LISTENER)],
                "hostnames": [public_host(env)],
                "rules": [rule(spec, env) for spec in chunk],
            },
        })
    return routes


def gateway_documents(env: Environment, specs: list[FunctionSpec], services: Iterable[str]) -> list[Manifest]:
    """The Gateway, the ReferenceGrant, the redirect to HTTPS and every service's HTTPRoutes, in the order
    they are applied."""
    return [gateway(env), reference_grant(env), https_redirect(env),
            *(route for service in services for route in http_routes(env, specs, service))]


def routed_paths(documents: Iterable[Manifest]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Function host -> the (method, path match) pairs the HTTPRoutes send to it (for the checks)."""
    found: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for doc in documents:
        if doc.get("kind") != "HTTPRoute":
            continue
        for item in doc["spec"]["rules"]:
            hosts = [f["urlRewrite"]["hostname"] for f in item["filters"] if f["type"] == "URLRewrite"]
            for host in hosts:  # none in the redirect to HTTPS
                found.setdefault(host, []).extend((match["method"], match["path"]) for match in item["matches"])
    return found


def route_problems(documents: list[Manifest], specs: Iterable[FunctionSpec], env: Environment) -> list[str]:
    """Where the HTTPRoutes disagree with the registry: each HTTP route must reach its own function, and
    nothing else may be routed (a function's internal paths never are)."""
    routed = routed_paths(documents)
    problems = []
    for spec in specs:
        if spec.kind != "http" or not spec.routes:
            continue
        host = function_host(spec, env)
        declared = [(route.method, path) for route in spec.routes for path in path_matches(route)]
        if routed.pop(host, []) != declared:
            problems.append(f"HTTPRoutes do not route {', '.join(map(str, spec.routes))} to {host} as declared")
    problems += [f"HTTPRoutes send requests to {host}, which is no HTTP function" for host in sorted(routed)]
    return problems + listener_problems(documents)


def listener_problems(documents: Iterable[Manifest]) -> list[str]:
    """An HTTPRoute that reaches a function must be served on the HTTPS listener only: on plain HTTP the
    bearer tokens and sign-in codes would travel in clear text."""
    problems = []
    for doc in documents:
        if doc.get("kind") != "HTTPRoute" or not any(item.get("backendRefs") for item in doc["spec"]["rules"]):
            continue
        listeners = [parent.get("sectionName") for parent in doc["spec"]["parentRefs"]]
        if listeners != [HTTPS_LISTENER]:
            problems.append(f"HTTPRoute {doc['metadata']['name']} is served on the listeners {listeners}, "
                            f"not on {HTTPS_LISTENER!r} only")
    return problems
