"""One Knative Service per function: image per service, FUNCTION_TARGET picks the function.

Autoscaling uses the KPA (the only Knative autoscaler that scales to zero) on request
concurrency. The original table's CPU target (70 %, payments 60 %) becomes the KPA's
`target-utilization-percentage`: a replica counts as full at that share of its concurrency
target, which keeps the same headroom the CPU target gave. Mixing in the HPA's `metric: cpu`
would need the HPA class, which never scales to zero.
"""

from __future__ import annotations

import math
from typing import Any

from fusion.catalog_lookup import LOOKUP_ROUTE
from fusion.config import SERVICE_SETTINGS
from fusion.knative.environments import Environment
from fusion.knative.resources import (
    CONTAINER_PORT,
    DATABASE_SECRET,
    ROUTES_ANNOTATION,
    SHIPPING_KEYS,
    SHIPPING_SECRET,
    STRIPE_BROWSER_KEYS,
    STRIPE_KEYS,
    STRIPE_SECRET,
    Manifest,
    config_env,
    half,
    labels,
    metadata,
    oidc_env,
    restricted,
    scrape_annotations,
    secret_env,
    value_env,
)
from fusion.knative.security import kafka_ca_volume, kafka_client_env, pod_kind_label
from fusion.registry import FunctionSpec, Service, load_all

AUTOSCALING = "autoscaling.knative.dev/"
THREADS = 8  # gunicorn threads per pod (functions-framework's THREADS); the concurrency target follows it
HTTP_TIMEOUT_SECONDS = 30
VISIBILITY_LABEL = "networking.knative.dev/visibility"
SERVICES_WITH_STRIPE = frozenset({"payments"})
SERVICES_WITH_KAFKA = frozenset({"operations"})  # reads and replays the dead-letter topics


def service_image(service: str, env: Environment) -> str:
    return env.image(service)


def autoscaling_annotations(service: Service, env: Environment) -> dict[str, str]:
    """Revision-template annotations (strings): scale to zero unless the environment has floors."""
    floor = service.min_replicas if env.scale_floors else 0
    annotations = {
        AUTOSCALING + "class": "kpa.autoscaling.knative.dev",
        AUTOSCALING + "metric": "concurrency",
        AUTOSCALING + "target": str(THREADS),
        AUTOSCALING + "target-utilization-percentage": str(service.cpu_target),
        AUTOSCALING + "min-scale": str(floor),
        AUTOSCALING + "max-scale": str(service.max_replicas),
    }
    if floor:
        # A new Revision takes traffic only once it has reached the floor.
        annotations[AUTOSCALING + "initial-scale"] = str(floor)
    return annotations


def _timeout_seconds(spec: FunctionSpec) -> int:
    """Per-request limit: at least the delivery timeout, so Knative never cuts a delivery short."""
    if spec.delivery is None:
        return HTTP_TIMEOUT_SECONDS
    return max(HTTP_TIMEOUT_SECONDS, math.ceil(spec.delivery.timeout))


def _env(spec: FunctionSpec) -> list[dict[str, Any]]:
    service = spec.service_spec
    env = [
        value_env("FUNCTION_TARGET", spec.target),
        value_env("FUNCTION_SOURCE", service.source),
        value_env("FUNCTION_SIGNATURE_TYPE", "http"),
        config_env("FUSION_ENV"),
        config_env("LOG_LEVEL"),
        config_env("KAFKA_BROKERS"),
        config_env("PUBLIC_BASE_URL"),
        config_env("DB_POOL_SIZE"),
        config_env("THREADS"),
        *oidc_env(),
        secret_env("DATABASE_URL", DATABASE_SECRET, service.name),
    ]
    env.extend(config_env(name) for name in SERVICE_SETTINGS.get(service.name, ()))
    if service.name in SERVICES_WITH_STRIPE:
        env.extend(secret_env(key, STRIPE_SECRET) for key in STRIPE_KEYS)
    if service.name == "shipping":
        env.extend(secret_env(key, SHIPPING_SECRET) for key in SHIPPING_KEYS)
    if service.name == "storefront":
        env.extend(secret_env(key, STRIPE_SECRET) for key in STRIPE_BROWSER_KEYS)
    return env


def catalog_address(env: Environment) -> str:
    """The cluster-local address of the catalog function other services look products up with (CATALOG_URL)."""
    lookup = next(spec for spec in load_all().values() if LOOKUP_ROUTE in spec.routes)
    return f"http://{lookup.name}.{env.namespace}.svc.cluster.local"


def _readiness_probe() -> dict[str, Any]:
    # No port (Knative probes the serving port), no delay and no period: the queue-proxy then polls
    # aggressively, so a cold start is ready as soon as /health answers.
    return {"httpGet": {"path": "/health"}, "initialDelaySeconds": 0}


def _liveness_probe() -> dict[str, Any]:
    # /health reports the database too: six failures 10 s apart before a restart ride out a short outage.
    return {"httpGet": {"path": "/health"}, "initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 2,
            "failureThreshold": 6}


def _container(spec: FunctionSpec, env: Environment) -> dict[str, Any]:
    service = spec.service_spec
    return {
        "name": "function",
        "image": service_image(service.name, env),
        "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
        "env": _env(spec),
        "resources": {
            "requests": {"cpu": half(service.cpu_limit), "memory": half(service.memory_limit)},
            "limits": {"cpu": service.cpu_limit, "memory": service.memory_limit},
        },
        "readinessProbe": _readiness_probe(),
        "livenessProbe": _liveness_probe(),
        "securityContext": restricted(),
    }


def knative_service(spec: FunctionSpec, env: Environment) -> Manifest:
    service = spec.service_spec
    service_labels = labels(spec.name, "function", service.name)
    # No function has a public URL of its own: the outside comes in through the one gateway,
    # event handlers are reached by the Broker only.
    service_labels[VISIBILITY_LABEL] = "cluster-local"
    annotations = {ROUTES_ANNOTATION: ", ".join(str(route) for route in spec.routes)} if spec.routes else None
    ksvc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": metadata(spec.name, env.namespace, service_labels, annotations),
        "spec": {
            "template": {
                "metadata": {
                    "labels": {**labels(spec.name, "function", service.name), **pod_kind_label(spec)},
                    # Prometheus scrapes the pod's serving port, the queue-proxy not in the way.
                    "annotations": {**autoscaling_annotations(service, env), **scrape_annotations(CONTAINER_PORT)},
                },
                "spec": {
                    "containerConcurrency": 0,
                    "timeoutSeconds": _timeout_seconds(spec),
                    "enableServiceLinks": False,
                    "containers": [_container(spec, env)],
                },
            }
        },
    }
    return _with_kafka_client(ksvc, env) if service.name in SERVICES_WITH_KAFKA else ksvc


def _with_kafka_client(ksvc: Manifest, env: Environment) -> Manifest:
    """A function that reads Kafka itself (operations: the dead letters) gets the relay's TLS and SASL settings."""
    if not env.kafka_tls:
        return ksvc
    pod = ksvc["spec"]["template"]["spec"]
    volume, mount = kafka_ca_volume()
    pod["volumes"] = [volume]
    for container in pod["containers"]:
        container["env"].extend(kafka_client_env())
        container["volumeMounts"] = [mount]
    return ksvc
