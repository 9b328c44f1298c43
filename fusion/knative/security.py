"""Trust boundaries in the cluster: who may send events to the Broker (EventPolicy), which pods may
reach which (NetworkPolicy), and the Kafka credentials every Kafka client takes by reference.

Knative Eventing's sender identity (`authentication-oidc`) gives each delivery a service-account token
whose audience is the Trigger's `subscriber.audience`; the functions verify it against
EVENTING_OIDC_ISSUER (the cluster's service-account issuer). The policies below are the network and
eventing halves of the same boundary.
"""

from __future__ import annotations

from typing import Any

from fusion.knative.environments import Environment
from fusion.knative.resources import (
    BROKER,
    CONTAINER_PORT,
    MONITORING_NAMESPACE,
    Manifest,
    labels,
    metadata,
    secret_env,
)
from fusion.registry import FunctionSpec

KAFKA_SECRET = "fusion-kafka"
# Keys in the format Knative's Kafka components read (`protocol`, `sasl.mechanism`, `user`, `password`,
# `ca.crt`), so one Secret serves the Broker, the KafkaSource, the sinks, the relay and the topics Job.
KAFKA_SECRET_KEYS = ("protocol", "sasl.mechanism", "user", "password", "ca.crt")
KAFKA_CA_DIR = "/etc/kafka-ca"
SERVING_NAMESPACE = "knative-serving"  # the activator, which holds requests while a function scales from zero
# The namespaces of Knative's networking layer (e.g. kourier-system, istio-system) carry this label: every
# request to a Knative Service, the event plane's deliveries included, arrives through its gateways.
NETWORKING_NAMESPACE_LABEL = "fusioncommerce.dev/knative-networking"
KIND_LABEL = "fusioncommerce.dev/kind"  # http | cloudevent | scheduled, on every function's pods
NAMESPACE_NAME = "kubernetes.io/metadata.name"


def kafka_client_env() -> list[dict[str, Any]]:
    """TLS and SASL/SCRAM settings of a librdkafka client (the relay), from the Kafka Secret."""
    return [
        secret_env("KAFKA_SECURITY_PROTOCOL", KAFKA_SECRET, "protocol"),
        secret_env("KAFKA_SASL_MECHANISM", KAFKA_SECRET, "sasl.mechanism"),
        secret_env("KAFKA_SASL_USERNAME", KAFKA_SECRET, "user"),
        secret_env("KAFKA_SASL_PASSWORD", KAFKA_SECRET, "password"),
        {"name": "KAFKA_SSL_CA_LOCATION", "value": f"{KAFKA_CA_DIR}/ca.crt"},
    ]


def kafka_ca_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the Kafka CA certificate, read-only."""
    volume = {"name": "kafka-ca", "secret": {"secretName": KAFKA_SECRET, "items": [{"key": "ca.crt",
                                                                                     "path": "ca.crt"}]}}
    return volume, {"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True}


def kafka_source_net() -> dict[str, Any]:
    def key(name: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": KAFKA_SECRET, "key": name}}

    return {
        "sasl": {"enable": True, "user": key("user"), "password": key("password"), "type": key("sasl.mechanism")},
        "tls": {"enable": True, "caCert": key("ca.crt")},
    }


def broker_event_policy(env: Environment, sources: list[tuple[str, str, str]]) -> Manifest:
    """Only our sources may send to the Broker: the KafkaSource and the PingSources, not every pod."""
    name = f"{BROKER}-senders"
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "EventPolicy",
        "metadata": metadata(name, env.namespace, labels(name, "security")),
        "spec": {
            "to": [{"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": BROKER}}],
            "from": [{"ref": {"apiVersion": api, "kind": kind, "name": source, "namespace": env.namespace}}
                     for api, kind, source in sources],
        },
    }


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: name}}}


def network_policy(env: Environment) -> Manifest:
    """Function pods take requests only through Knative (its gateways and the activator): no pod of this
    namespace or any other reaches a function directly, around the routing, the OIDC check and the policies.
    Prometheus (the `monitoring` namespace) reaches the serving port, for /metrics."""
    name = "functions-through-knative-only"
    networking = {"namespaceSelector": {"matchLabels": {NETWORKING_NAMESPACE_LABEL: "true"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, env.namespace, labels(name, "security")),
        "spec": {
            "podSelector": {"matchExpressions": [{"key": KIND_LABEL, "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [networking, _namespace(SERVING_NAMESPACE)]},
                        # Prometheus scrapes /metrics on the serving port; every other path there still asks
                        # for a token or a delivery identity.
                        {"from": [_namespace(MONITORING_NAMESPACE)],
                         "ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]}],
        },
    }


def pod_kind_label(spec: FunctionSpec) -> dict[str, str]:
    return {KIND_LABEL: spec.kind}
