"""Prometheus finds every pod that has /metrics, and may reach it; the relay exports the Triggers' lag."""

from __future__ import annotations

from deploy_support import of_kind

from fusion.knative.environments import Environment
from fusion.knative.eventing import handler_consumer_groups, trigger_consumer_group, trigger_name
from fusion.knative.resources import Manifest
from fusion.registry import FunctionSpec

SCRAPE = "prometheus.io/scrape"


def test_every_function_pod_is_scraped_on_its_serving_port(documents: list[Manifest]) -> None:
    functions = of_kind(documents, "Service", "serving.knative.dev")
    assert functions
    for ksvc in functions:
        annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
        assert (annotations[SCRAPE], annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == \
            ("true", "8080", "/metrics"), ksvc["metadata"]["name"]


def test_the_relay_serves_metrics_with_the_triggers_lag_of_its_namespace(documents: list[Manifest],
                                                                          env: Environment) -> None:
    (relay,) = [d for d in of_kind(documents, "Deployment") if d["metadata"]["name"] == "outbox-relay"]
    pod = relay["spec"]["template"]
    assert pod["metadata"]["annotations"][SCRAPE] == "true"
    port = int(pod["metadata"]["annotations"]["prometheus.io/port"])
    container = pod["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": port} in container["ports"]
    values = {item["name"]: item.get("value") for item in container["env"]}
    assert values["FUSION_METRICS_ADDRESS"] == f"0.0.0.0:{port}"
    assert values["FUSION_TRIGGER_NAMESPACE"] == env.namespace


def test_prometheus_may_reach_the_functions_serving_port_only(documents: list[Manifest]) -> None:
    (policy,) = of_kind(documents, "NetworkPolicy")
    monitoring = [rule for rule in policy["spec"]["ingress"]
                  if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                  in rule["from"]]
    assert monitoring == [{"from": monitoring[0]["from"], "ports": [{"protocol": "TCP", "port": 8080}]}]


def test_each_handlers_trigger_group_is_named_as_the_kafka_broker_names_it(documents: list[Manifest],
                                                                           env: Environment,
                                                                           specs: list[FunctionSpec]) -> None:
    groups = handler_consumer_groups(specs, env.namespace)
    triggers = {t["metadata"]["name"] for t in of_kind(documents, "Trigger")}
    for spec in specs:
        for topic_name in spec.topics if spec.kind == "cloudevent" else ():
            name = trigger_name(spec.name, topic_name)
            assert name in triggers
            assert groups[trigger_consumer_group(env.namespace, name)] == spec.name
    assert trigger_consumer_group("shop", "reserve-stock-order-created") == \
        "knative-trigger-shop-reserve-stock-order-created"
