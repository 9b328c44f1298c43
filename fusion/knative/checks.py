"""Semantic checks of one environment's manifests: what no schema can see.

Every function returns a list of problems (empty = fine), each naming the manifest at fault.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from fusion.cron import Cron, CronError
from fusion.knative.environments import Environment
from fusion.knative.gateway import LOCAL_GATEWAY, route_problems
from fusion.knative.resources import BROKER, SECRET_ENV_NAMES, SERVICE_LABEL, Manifest
from fusion.knative.serving import AUTOSCALING
from fusion.registry import FunctionSpec, services
from fusion.topics import PING_TYPE, UnknownTopic, all_topic_names, topic_for_type

ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
SECRET_LOOKING = re.compile(r"postgres(ql)?(\+\w+)?://[^:/@\s]+:[^@\s]+@|\b(sk|rk)_(live|test)_\w+|\bwhsec_\w+")
CLUSTER_SCOPED = frozenset({"Namespace"})


def _name(doc: Manifest) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def of_kind(documents: Iterable[Manifest], kind: str, api_group: str | None = None) -> list[Manifest]:
    return [
        doc for doc in documents
        if doc.get("kind") == kind and (api_group is None or str(doc.get("apiVersion", "")).startswith(api_group))
    ]


def knative_services(documents: Iterable[Manifest]) -> list[Manifest]:
    return of_kind(documents, "Service", "serving.knative.dev/")


def pod_spec(doc: Manifest) -> dict[str, Any] | None:
    if doc.get("kind") in ("Deployment", "Job") or doc.get("apiVersion") == "serving.knative.dev/v1":
        spec: dict[str, Any] = doc.get("spec", {}).get("template", {}).get("spec", {})
        return spec
    return None


def containers(doc: Manifest) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    return list(spec.get("containers", [])) if spec else []


def _template_annotations(doc: Manifest) -> dict[str, Any]:
    annotations: dict[str, Any] = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    return annotations


def names_are_unique(documents: list[Manifest]) -> list[str]:
    counts = Counter((doc.get("apiVersion"), doc.get("kind"), doc["metadata"]["name"]) for doc in documents)
    return [f"{kind}/{name} ({api}) is declared {n} times" for (api, kind, name), n in counts.items() if n > 1]


def _home(doc: Manifest, env: Environment) -> str:
    """The environment's namespace, but for the grant that lets its routes reach Knative's local gateway."""
    return LOCAL_GATEWAY.namespace if doc.get("kind") == "ReferenceGrant" else env.namespace


def in_namespace(documents: list[Manifest], env: Environment) -> list[str]:
    return [
        f"{_name(doc)}: namespace {doc['metadata'].get('namespace')!r}, expected {_home(doc, env)!r}"
        for doc in documents
        if doc.get("kind") not in CLUSTER_SCOPED and doc["metadata"].get("namespace") != _home(doc, env)
    ]


def functions_are_deployed(documents: list[Manifest], specs: list[FunctionSpec], env: Environment) -> list[str]:
    """One Knative Service per function, running that function of its service's image."""
    problems = []
    deployed = {doc["metadata"]["name"]: doc for doc in knative_services(documents)}
    for spec in specs:
        ksvc = deployed.get(spec.name)
        if ksvc is None:
            problems.append(f"function {spec.name} has no Knative Service")
            continue
        if len(containers(ksvc)) != 1:
            problems.append(f"{_name(ksvc)}: a Knative Service runs exactly one container")
            continue
        container = containers(ksvc)[0]
        env_vars = {e["name"]: e.get("value") for e in container.get("env", [])}
        if env_vars.get("FUNCTION_TARGET") != spec.target:
            problems.append(f"{_name(ksvc)}: FUNCTION_TARGET is not {spec.target}")
        if env_vars.get("FUNCTION_SOURCE") != spec.service_spec.source:
            problems.append(f"{_name(ksvc)}: FUNCTION_SOURCE is not {spec.service_spec.source}")
        if container.get("image") != env.image(spec.service):
            problems.append(f"{_name(ksvc)}: image {container.get('image')} is not {env.image(spec.service)}")
    problems += [f"{name}: no such function in the registry" for name in set(deployed) - {s.name for s in specs}]
    return problems


def subscribers_exist(documents: list[Manifest]) -> list[str]:
    """Every Trigger points at the Broker and at a Knative Service or Service declared alongside it."""
    ksvcs = {doc["metadata"]["name"] for doc in knative_services(documents)}
    core = {doc["metadata"]["name"] for doc in of_kind(documents, "Service") if doc.get("apiVersion") == "v1"}
    brokers = {doc["metadata"]["name"] for doc in of_kind(documents, "Broker")}
    problems = []
    for trigger in of_kind(documents, "Trigger"):
        spec = trigger["spec"]
        if spec.get("broker") not in brokers:
            problems.append(f"{_name(trigger)}: broker {spec.get('broker')!r} is not declared")
        reference = spec.get("subscriber", {}).get("ref", {})
        known = ksvcs if reference.get("apiVersion") == "serving.knative.dev/v1" else core
        if reference.get("kind") != "Service" or reference.get("name") not in known:
            problems.append(f"{_name(trigger)}: subscriber {reference} does not exist")
    return problems


def source_topics(documents: list[Manifest]) -> set[str]:
    """Topics some KafkaSource brings into the Broker."""
    return {
        name
        for source in of_kind(documents, "KafkaSource")
        if source["spec"].get("sink", {}).get("ref", {}).get("name") == BROKER
        for name in source["spec"].get("topics", [])
    }


def handled_types_are_produced(documents: list[Manifest], specs: list[FunctionSpec]) -> list[str]:
    """Every filtered type is a catalogue topic, fed into the Broker, and published by a deployed service."""
    producing_services = {spec.service for spec in specs}
    fed = source_topics(documents)
    pings = {doc["metadata"]["name"] for doc in of_kind(documents, "PingSource")}
    problems = []
    for trigger in of_kind(documents, "Trigger"):
        attributes = trigger["spec"].get("filter", {}).get("attributes", {})
        event_type = attributes.get("type")
        if event_type == PING_TYPE:
            source_name = str(attributes.get("source", "")).rsplit("/", 1)[-1]
            if source_name not in pings or not str(attributes.get("source", "")).startswith("/apis/v1/namespaces/"):
                problems.append(f"{_name(trigger)}: no PingSource sends {attributes.get('source')!r}")
            continue
        try:
            topic_ = topic_for_type(str(event_type))
        except UnknownTopic:
            problems.append(f"{_name(trigger)}: type {event_type!r} is no catalogue topic")
            continue
        if topic_.name not in fed:
            problems.append(f"{_name(trigger)}: topic {topic_.name} is not brought into the Broker")
        if topic_.producer not in producing_services:
            problems.append(f"{_name(trigger)}: {topic_.producer}, the producer of {topic_.name}, has no functions")
    return problems


def dead_letters_exist(documents: list[Manifest]) -> list[str]:
    """Every dead-letter sink is a declared KafkaSink writing `<topic>.dlq` of a catalogue topic."""
    sinks = {doc["metadata"]["name"]: doc["spec"]["topic"] for doc in of_kind(documents, "KafkaSink")}
    known_topics = set(all_topic_names())
    problems = [f"KafkaSink/{name}: topic {topic_} is not in the catalogue"
                for name, topic_ in sinks.items() if topic_ not in known_topics]
    for trigger in of_kind(documents, "Trigger"):
        sink = trigger["spec"].get("delivery", {}).get("deadLetterSink")
        if sink is None:
            continue
        name = sink.get("ref", {}).get("name")
        if sink.get("ref", {}).get("kind") != "KafkaSink" or name not in sinks:
            problems.append(f"{_name(trigger)}: dead-letter sink {sink} is not a declared KafkaSink")
            continue
        event_type = str(trigger["spec"].get("filter", {}).get("attributes", {}).get("type", ""))
        try:
            expected = topic_for_type(event_type).dlq
        except UnknownTopic:
            continue  # reported by handled_types_are_produced
        if sinks[name] != expected:
            problems.append(f"{_name(trigger)}: dead letters go to {sinks[name]}, expected {expected}")
    return problems


def delivery_is_valid(documents: list[Manifest]) -> list[str]:
    """What the admission webhook would refuse: backoff policy, ISO-8601 durations, retry counts."""
    problems = []
    for doc in [*of_kind(documents, "Trigger"), *of_kind(documents, "KafkaSource")]:
        delivery = doc["spec"].get("delivery")
        if delivery is None:
            continue
        if delivery.get("backoffPolicy") not in ("linear", "exponential"):
            problems.append(f"{_name(doc)}: backoffPolicy {delivery.get('backoffPolicy')!r}")
        for field in ("backoffDelay", "timeout"):
            if field in delivery and not ISO_DURATION.match(str(delivery[field])):
                problems.append(f"{_name(doc)}: {field} {delivery[field]!r} is not an ISO-8601 duration")
        if not isinstance(delivery.get("retry"), int) or delivery["retry"] < 0:
            problems.append(f"{_name(doc)}: retry {delivery.get('retry')!r}")
    for trigger in of_kind(documents, "Trigger"):
        order = trigger["metadata"].get("annotations", {}).get("kafka.eventing.knative.dev/delivery.order")
        if order not in ("ordered", "unordered"):
            problems.append(f"{_name(trigger)}: delivery order {order!r}")
    return problems


def sources_are_valid(documents: list[Manifest]) -> list[str]:
    """KafkaSources keep their offsets under a fixed consumer group and start from the earliest record."""
    problems = []
    for source in of_kind(documents, "KafkaSource"):
        spec = source["spec"]
        if not spec.get("consumerGroup"):
            problems.append(f"{_name(source)}: no explicit consumerGroup")
        if spec.get("initialOffset") != "earliest":
            problems.append(f"{_name(source)}: initialOffset {spec.get('initialOffset')!r}, expected 'earliest'")
    return problems


def schedules_are_valid(documents: list[Manifest]) -> list[str]:
    problems = []
    for source in of_kind(documents, "PingSource"):
        try:
            Cron(str(source["spec"].get("schedule", "")))
        except CronError as exc:
            problems.append(f"{_name(source)}: {exc}")
    return problems


def _env_entries(documents: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for doc in documents:
        for container in containers(doc):
            for entry in container.get("env", []):
                yield doc, entry


def no_secret_is_inlined(documents: list[Manifest]) -> list[str]:
    """Secrets reach the workloads by reference only; Secret manifests are empty templates."""
    problems = []
    for doc, entry in _env_entries(documents):
        if entry["name"] in SECRET_ENV_NAMES and "secretKeyRef" not in entry.get("valueFrom", {}):
            problems.append(f"{_name(doc)}: {entry['name']} must come from a Secret (secretKeyRef)")
        if SECRET_LOOKING.search(str(entry.get("value", ""))):
            problems.append(f"{_name(doc)}: {entry['name']} carries what looks like a secret value")
    for secret in of_kind(documents, "Secret"):
        if secret.get("data"):
            problems.append(f"{_name(secret)}: has data; templates must not carry values")
        filled = [key for key, value in secret.get("stringData", {}).items() if value != ""]
        if filled:
            problems.append(f"{_name(secret)}: values filled in for {filled}")
    for config_map in of_kind(documents, "ConfigMap"):
        for key, value in config_map.get("data", {}).items():
            if SECRET_LOOKING.search(str(value)):
                problems.append(f"{_name(config_map)}: {key} looks like a secret value")
    return problems


def _string_maps(doc: Manifest) -> Iterator[tuple[str, dict[str, Any]]]:
    meta = doc.get("metadata", {})
    spec = doc.get("spec")
    template_meta = spec.get("template", {}).get("metadata", {}) if isinstance(spec, dict) else {}
    for where, meta_ in (("metadata", meta), ("spec.template.metadata", template_meta)):
        for field in ("annotations", "labels"):
            if field in meta_:
                yield f"{where}.{field}", meta_[field]


def annotations_are_strings(documents: list[Manifest]) -> list[str]:
    return [
        f"{_name(doc)}: {where}[{key}] = {value!r} is not a string"
        for doc in documents
        for where, values in _string_maps(doc)
        for key, value in values.items()
        if not isinstance(value, str)
    ]


def scaling_matches_services(documents: list[Manifest], env: Environment) -> list[str]:
    """Autoscaling on the revision template only, with the floors, ceilings and targets of the declared services."""
    problems = []
    for ksvc in knative_services(documents):
        if any(key.startswith(AUTOSCALING) for key in ksvc["metadata"].get("annotations", {})):
            problems.append(f"{_name(ksvc)}: autoscaling annotations belong on spec.template.metadata")
        service = services().get(ksvc["metadata"]["labels"].get(SERVICE_LABEL, ""))
        if service is None:
            problems.append(f"{_name(ksvc)}: no known {SERVICE_LABEL} label")
            continue
        annotations = _template_annotations(ksvc)
        expected = {
            "min-scale": str(service.min_replicas if env.scale_floors else 0),
            "max-scale": str(service.max_replicas),
            "target-utilization-percentage": str(service.cpu_target),
            "class": "kpa.autoscaling.knative.dev",
        }
        for key, value in expected.items():
            if annotations.get(AUTOSCALING + key) != value:
                problems.append(f"{_name(ksvc)}: {AUTOSCALING}{key} is {annotations.get(AUTOSCALING + key)!r}, "
                                f"expected {value!r}")
    return problems


def probes_use_health(documents: list[Manifest]) -> list[str]:
    problems = []
    for ksvc in knative_services(documents):
        for container in containers(ksvc):
            for probe_name in ("readinessProbe", "livenessProbe"):
                probe = container.get(probe_name, {})
                if probe.get("httpGet", {}).get("path") != "/health" or probe.get("initialDelaySeconds") != 0:
                    problems.append(f"{_name(ksvc)}: {probe_name} must be httpGet /health with no initial delay")
    return problems


def semantic_problems(documents: list[Manifest], env: Environment, specs: list[FunctionSpec]) -> list[str]:
    """All of the above for one environment."""
    return [
        *names_are_unique(documents),
        *in_namespace(documents, env),
        *functions_are_deployed(documents, specs, env),
        *subscribers_exist(documents),
        *handled_types_are_produced(documents, specs),
        *dead_letters_exist(documents),
        *delivery_is_valid(documents),
        *sources_are_valid(documents),
        *schedules_are_valid(documents),
        *no_secret_is_inlined(documents),
        *annotations_are_strings(documents),
        *scaling_matches_services(documents, env),
        *probes_use_health(documents),
        *route_problems(documents, specs, env),
    ]
