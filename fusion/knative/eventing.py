"""Knative Eventing: Redpanda topics -> KafkaSource -> Broker (class Kafka) -> Triggers -> functions.

Each Trigger carries its handler's delivery policy and dead-letters to a KafkaSink writing
`<topic>.dlq`. Scheduled functions get a PingSource sending to the Broker (a PingSource has no
retry policy of its own) and a Trigger that picks out exactly that PingSource's ticks.
"""

from __future__ import annotations

import json
from typing import Any

from fusion.auth import delivery_audience
from fusion.knative.environments import Environment
from fusion.knative.resources import (
    BROKER,
    BROKER_CONFIG_MAP,
    FUNCTION_LABEL,
    Manifest,
    broker_ref,
    dns_name,
    iso_duration,
    ksvc_ref,
    labels,
    metadata,
    ref,
)
from fusion.knative.security import KAFKA_SECRET, broker_event_policy, kafka_source_net
from fusion.registry import Delivery, FunctionSpec
from fusion.topics import PING_TYPE, TOPICS, Topic, ping_source_address, topic

DELIVERY_ORDER = "kafka.eventing.knative.dev/delivery.order"
BROKER_CLASS = "eventing.knative.dev/broker.class"
KAFKA_SINK_API = "eventing.knative.dev/v1alpha1"
SOURCE_NAME = "fusion-topics"
PING_TIMEZONE = "Etc/UTC"
# The KafkaSource forwards to the Broker's ingress; these retries cover a Broker restart.
SOURCE_DELIVERY = {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S", "timeout": "PT10S"}
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


def dlq_sink_name(topic_name: str) -> str:
    return dns_name("dlq", topic_name)


def trigger_name(function: str, topic_name: str) -> str:
    return dns_name(function, topic_name)


def trigger_consumer_group(namespace: str, trigger: str) -> str:
    """The Kafka consumer group the Knative Kafka Broker gives a Trigger (its default
    `triggers.consumergroup.template`, knative-trigger-{{ .Namespace }}-{{ .Name }})."""
    return f"knative-trigger-{namespace}-{trigger}"


def handler_consumer_groups(specs: list[FunctionSpec], namespace: str) -> dict[str, str]:
    """Each event handler's Trigger consumer groups, group → handler."""
    return {trigger_consumer_group(namespace, trigger_name(spec.name, topic_name)): spec.name
            for spec in specs if spec.kind == "cloudevent" for topic_name in spec.topics}


def ping_source_name(function: str) -> str:
    return dns_name(function, "schedule")


def broker_config(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(BROKER_CONFIG_MAP, env.namespace, labels(BROKER_CONFIG_MAP, "eventing")),
        "data": {
            "bootstrap.servers": env.kafka_brokers,
            "default.topic.partitions": str(env.broker_partitions),
            "default.topic.replication.factor": str(env.replication),
            "default.topic.config.retention.ms": str(SEVEN_DAYS_MS),
            **({"auth.secret.ref.name": KAFKA_SECRET} if env.kafka_tls else {}),
        },
    }


def broker(env: Environment) -> Manifest:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": metadata(BROKER, env.namespace, labels(BROKER, "eventing"), {BROKER_CLASS: "Kafka"}),
        "spec": {
            "config": {"apiVersion": "v1", "kind": "ConfigMap", "name": BROKER_CONFIG_MAP,
                       "namespace": env.namespace},
        },
    }


def kafka_source(env: Environment) -> Manifest:
    """Every catalogue topic into the Broker; records are CloudEvents already, forwarded as they are."""
    return {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": metadata(SOURCE_NAME, env.namespace, labels(SOURCE_NAME, "eventing")),
        "spec": {
            "bootstrapServers": [env.kafka_brokers],
            "topics": sorted(TOPICS),
            "consumerGroup": f"{env.namespace}-{SOURCE_NAME}",
            "initialOffset": "earliest",
            "ordering": "ordered",
            "delivery": dict(SOURCE_DELIVERY),
            "sink": {"ref": broker_ref()},
            **({"net": kafka_source_net()} if env.kafka_tls else {}),
        },
    }


def dlq_sink(topic_: Topic, env: Environment) -> Manifest:
    name = dlq_sink_name(topic_.name)
    return {
        "apiVersion": KAFKA_SINK_API,
        "kind": "KafkaSink",
        "metadata": metadata(name, env.namespace, labels(name, "dead-letters")),
        "spec": {
            "topic": topic_.dlq,
            "bootstrapServers": [env.kafka_brokers],
            "contentMode": "binary",
            **({"auth": {"secret": {"ref": {"name": KAFKA_SECRET}}}} if env.kafka_tls else {}),
        },
    }


def delivery(policy: Delivery, dead_letter_topic: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "retry": policy.retries,
        "backoffPolicy": policy.backoff,
        "backoffDelay": iso_duration(policy.delay),
        "timeout": iso_duration(policy.timeout),
    }
    if dead_letter_topic is not None:
        spec["deadLetterSink"] = {"ref": ref(KAFKA_SINK_API, "KafkaSink", dlq_sink_name(dead_letter_topic))}
    return spec


def trigger(name: str, env: Environment, attributes: dict[str, str], subscriber: dict[str, Any],
            policy: Delivery, dead_letter_topic: str | None, trigger_labels: dict[str, str]) -> Manifest:
    order = "ordered" if policy.ordered else "unordered"
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": metadata(name, env.namespace, trigger_labels, {DELIVERY_ORDER: order}),
        "spec": {
            "broker": BROKER,
            "filter": {"attributes": attributes},
            "subscriber": subscriber,
            "delivery": delivery(policy, dead_letter_topic),
        },
    }


def _function_labels(name: str, spec: FunctionSpec) -> dict[str, str]:
    out = labels(name, "routing", spec.service)
    out[FUNCTION_LABEL] = spec.name
    return out


def handler_triggers(spec: FunctionSpec, env: Environment) -> list[Manifest]:
    """One Trigger per event type the handler consumes."""
    policy = spec.policy
    return [
        trigger(trigger_name(spec.name, topic_name), env, {"type": topic(topic_name).type},
                function_subscriber(spec), policy, topic_name,
                _function_labels(trigger_name(spec.name, topic_name), spec))
        for topic_name in spec.topics
    ]


def ping_source(spec: FunctionSpec, env: Environment) -> Manifest:
    name = ping_source_name(spec.name)
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "PingSource",
        "metadata": metadata(name, env.namespace, _function_labels(name, spec)),
        "spec": {
            "schedule": spec.schedule or "* * * * *",
            "timezone": PING_TIMEZONE,
            "contentType": "application/json",
            "data": json.dumps({"function": spec.name}, separators=(",", ":")),
            "sink": {"ref": broker_ref()},
        },
    }


def ping_trigger(spec: FunctionSpec, env: Environment) -> Manifest:
    """Only this function's ticks: every PingSource sends the same type, so filter on the source too."""
    name = dns_name(spec.name, "on-schedule")
    attributes = {"type": PING_TYPE, "source": ping_source_address(env.namespace, ping_source_name(spec.name))}
    # A missed tick is made up by the next one: no dead letters for schedules.
    return trigger(name, env, attributes, function_subscriber(spec), spec.policy, None,
                   _function_labels(name, spec))


def function_subscriber(spec: FunctionSpec) -> dict[str, Any]:
    """The function, with the audience of the delivery tokens it accepts (Knative's sender identity)."""
    return {"ref": ksvc_ref(spec.name), "audience": delivery_audience(spec.name)}


def broker_senders(env: Environment, specs: list[FunctionSpec]) -> Manifest:
    """The EventPolicy of the Broker: the KafkaSource and our PingSources only."""
    sources = [("sources.knative.dev/v1beta1", "KafkaSource", SOURCE_NAME)]
    sources += [("sources.knative.dev/v1", "PingSource", ping_source_name(spec.name))
                for spec in specs if spec.kind == "scheduled"]
    return broker_event_policy(env, sources)
