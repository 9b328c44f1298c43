"""Small building blocks shared by every manifest: names, labels, references, quantities, durations."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

Manifest = dict[str, Any]

PART_OF = "fusioncommerce"
SERVICE_LABEL = "fusioncommerce.dev/service"
FUNCTION_LABEL = "fusioncommerce.dev/function"
ROUTES_ANNOTATION = "fusioncommerce.dev/routes"

# Everything the workloads read: non-secret settings from one ConfigMap, secrets by reference only.
CONFIG_MAP = "fusion-config"
BROKER_CONFIG_MAP = "kafka-broker-config"
DATABASE_SECRET = "fusion-database"  # one key per consumer: each service, migrations, outbox-relay
STRIPE_SECRET = "fusion-stripe"
SHIPPING_SECRET = "fusion-shipping"
N8N_SECRET = "n8n-credentials"
MIGRATIONS_DB_KEY = "migrations"
RELAY_DB_KEY = "outbox-relay"
STRIPE_KEYS = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
STRIPE_BROWSER_KEYS = ("STRIPE_PUBLISHABLE_KEY",)  # the pages' key: public, but the Stripe account's, set with it
SHIPPING_KEYS = ("SHIPPING_CARRIER_SECRET",)  # carriers send it with their status updates
N8N_SECRET_KEYS = (
    "N8N_BASIC_AUTH_USER",
    "N8N_BASIC_AUTH_PASSWORD",
    "N8N_ENCRYPTION_KEY",
    "N8N_WEBHOOK_PATH_TOKEN",  # the notification webhooks' secret: their path ends with it
    "DB_POSTGRESDB_HOST",
    "DB_POSTGRESDB_DATABASE",
    "DB_POSTGRESDB_USER",
    "DB_POSTGRESDB_PASSWORD",
)
SECRET_ENV_NAMES = frozenset({"DATABASE_URL", *STRIPE_KEYS, *STRIPE_BROWSER_KEYS, *SHIPPING_KEYS, *N8N_SECRET_KEYS})

BROKER = "fusion"
NOTIFIER = "n8n"
RELAY = "outbox-relay"

_MAX_NAME = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def dns_name(*parts: str) -> str:
    """A DNS-1123 label from the parts (dots become dashes); too long ones keep a hash of the full name."""
    name = _NOT_DNS.sub("-", "-".join(parts).lower()).strip("-")
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return name[: _MAX_NAME - 9].rstrip("-") + "-" + digest


def labels(name: str, component: str, service: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
    }
    if service:
        out[SERVICE_LABEL] = service
    return out


def metadata(name: str, namespace: str, labels_: dict[str, str],
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels_}
    if annotations:
        meta["annotations"] = annotations
    return meta


def ref(api_version: str, kind: str, name: str) -> dict[str, str]:
    return {"apiVersion": api_version, "kind": kind, "name": name}


def broker_ref() -> dict[str, str]:
    return ref("eventing.knative.dev/v1", "Broker", BROKER)


def ksvc_ref(name: str) -> dict[str, str]:
    return ref("serving.knative.dev/v1", "Service", name)


def config_env(name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": name}}}


OIDC_AUDIENCE = "fusioncommerce"  # the API's audience, as registered at the identity provider
OIDC_SCOPE_CLAIM = "scope"  # Keycloak client scopes; `realm_access.roles` for realm roles
STOREFRONT_OIDC_CLIENT_ID = "fusioncommerce-storefront"  # the pages' public client at the identity provider


def oidc_env() -> list[dict[str, Any]]:
    """Who issues the tokens the functions accept: every process checks them at start outside development."""
    return [config_env(name) for name in ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_SCOPE_CLAIM", "EVENTING_OIDC_ISSUER")]


def secret_env(name: str, secret: str, key: str | None = None) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key or name}}}


CONTAINER_PORT = 8080  # every function's serving port
MONITORING_NAMESPACE = "monitoring"  # where Prometheus runs; it scrapes the pods these annotations mark
METRICS_PORT = 9400  # the relay's /metrics (a function's is on its serving port)


def scrape_annotations(port: int) -> dict[str, str]:
    """Pod annotations a Prometheus `kubernetes-pods` scrape job follows: /metrics on `port`."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def value_env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def iso_duration(seconds: float) -> str:
    """Seconds as the ISO-8601 duration Knative's delivery spec wants (`PT0.5S`, `PT30S`)."""
    if seconds <= 0:
        raise ValueError(f"a delivery duration must be positive, got {seconds}")
    return f"PT{int(seconds)}S" if float(seconds).is_integer() else f"PT{seconds:g}S"


_QUANTITY = re.compile(r"^(?P<number>\d+)(?P<unit>m|Mi|Gi)?$")


def half(quantity: str) -> str:
    """Half of a CPU (`1000m`, `1`) or memory (`512Mi`, `1Gi`) quantity: requests are half the limits."""
    found = _QUANTITY.match(quantity)
    if not found:
        raise ValueError(f"unsupported resource quantity {quantity!r}")
    number, unit = int(found["number"]), found["unit"]
    if unit in (None, "m"):
        millicores = number * 1000 if unit is None else number
        return f"{millicores // 2}m"
    mebibytes = number * 1024 if unit == "Gi" else number
    return f"{mebibytes // 2}Mi"


RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted(run_as_user: int | None = None) -> dict[str, Any]:
    """A container security context that meets the `restricted` Pod Security Standard."""
    context: dict[str, Any] = copy.deepcopy(RESTRICTED_CONTAINER)
    if run_as_user is not None:
        context["runAsUser"] = run_as_user
    return context
