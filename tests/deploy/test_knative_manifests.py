"""The committed Knative/Kubernetes manifests: drift, schema validation and what they must say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import committed, find, mutated, of_kind

from fusion.knative.checks import semantic_problems
from fusion.knative.environments import Environment, environments
from fusion.knative.render import KNATIVE_DIR, check, environment_path, render_all, render_environment
from fusion.knative.resources import Manifest, iso_duration
from fusion.knative.schemas import SchemaKey, validate
from fusion.registry import Delivery, FunctionSpec, services
from fusion.topics import PING_TYPE, TOPICS, topic

AUTOSCALING = "autoscaling.knative.dev/"
# The original scaling table, written out again on purpose: the declared services must not drift from it.
ORIGINAL_SCALING = {
    "catalog": (2, 8, 70), "orders": (2, 10, 70), "inventory": (2, 10, 70),
    "group-commerce": (1, 5, 70), "payments": (2, 8, 60), "shipping": (1, 5, 70),
    "storefront": (2, 6, 70), "operations": (1, 2, 70),  # not in the original table: the pages and the console
}
ORIGINAL_LIMITS = {
    "catalog": ("500m", "512Mi"), "orders": ("1000m", "1Gi"), "inventory": ("1000m", "1Gi"),
    "group-commerce": ("500m", "512Mi"), "payments": ("500m", "512Mi"), "shipping": ("500m", "512Mi"),
    "storefront": ("250m", "256Mi"), "operations": ("250m", "256Mi"),
}


# --- drift -----------------------------------------------------------------------------------------

def test_committed_manifests_equal_a_fresh_render() -> None:
    problems = check()
    assert problems == [], "run `fusion knative render` and commit the result:\n" + "\n".join(problems)


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    render_all(first, first / "workflows.json")
    render_all(second, second / "workflows.json")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_render_removes_manifests_of_functions_that_are_gone(tmp_path: Path) -> None:
    stale = tmp_path / "overlays" / "staging" / "apps" / "retired.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Service\n")
    render_all(tmp_path, tmp_path / "workflows.json")
    assert not stale.exists()
    assert check(tmp_path, tmp_path / "workflows.json") == []


def test_drift_is_reported_per_file(tmp_path: Path) -> None:
    render_all(tmp_path, tmp_path / "workflows.json")
    orders = tmp_path / "overlays" / "production" / "apps" / "orders.yaml"
    orders.write_text(orders.read_text().replace("min-scale: '2'", "min-scale: '3'", 1))
    (tmp_path / "base" / "jobs" / "migrate.yaml").unlink()
    problems = check(tmp_path, tmp_path / "workflows.json")
    assert "knative/overlays/production/apps/orders.yaml: differs from the registry" in problems
    assert "knative/base/jobs/migrate.yaml: missing" in problems


def test_ci_renders_one_environment_with_its_image_tag(tmp_path: Path) -> None:
    render_environment("staging", tmp_path, "sha-1a2b3c4")
    documents = [doc for path in sorted(tmp_path.rglob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    images = {c["image"] for doc in documents for c in _containers(doc)}
    ours = {image for image in images if image.startswith("ghcr.io/fusioncommerce/")}
    assert ours and all(image.endswith(":sha-1a2b3c4") for image in ours)
    assert {path.parent.name for path in tmp_path.rglob("*.yaml")} == {"platform", "jobs", "apps", "secrets"}


# --- schemas ---------------------------------------------------------------------------------------

def test_every_manifest_validates_against_the_real_schemas(
    documents: list[Manifest], crd_schemas: dict[SchemaKey, dict[str, Any]]
) -> None:
    assert validate(documents, crd_schemas) == []
    knative_kinds = {(d["apiVersion"], d["kind"]) for d in documents if "knative.dev" in d["apiVersion"]}
    assert knative_kinds <= set(crd_schemas), "every Knative kind is checked against its CRD"
    assert {kind for _, kind in knative_kinds} == {"Service", "Trigger", "Broker", "KafkaSource", "KafkaSink",
                                                    "PingSource", "EventPolicy"}


def _ksvc(documents: list[Manifest]) -> Manifest:
    return of_kind(documents, "Service", "serving.knative.dev")[0]


def _set(path: list[Any], value: Any) -> Callable[[list[Manifest]], None]:
    def change(documents: list[Manifest]) -> None:
        target: Any = _ksvc(documents)
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


SCHEMA_MISTAKES: dict[str, Callable[[list[Manifest]], None]] = {
    "annotation as a number": _set(["spec", "template", "metadata", "annotations", AUTOSCALING + "min-scale"], 2),
    "misspelt ksvc field": _set(["spec", "template", "spec", "containerConcurency"], 5),
    "port as a string": _set(["spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"], "8080"),
    "unknown container field": _set(["spec", "template", "spec", "containers", 0, "envFromm"], []),
    "name not DNS-1123": _set(["metadata", "name"], "Create_Product"),
    "KafkaSource without servers": lambda docs: of_kind(docs, "KafkaSource")[0]["spec"].pop("bootstrapServers"),
    "Trigger retry as text": lambda docs: of_kind(docs, "Trigger")[0]["spec"]["delivery"].update(retry="3"),
    "KafkaSink content mode": lambda docs: of_kind(docs, "KafkaSink")[0]["spec"].update(contentMode="text"),
    "Deployment selector mismatch": lambda docs: of_kind(docs, "Deployment")[0]["spec"]["selector"][
        "matchLabels"].update({"app.kubernetes.io/name": "other"}),
    "Job that restarts always": lambda docs: of_kind(docs, "Job")[0]["spec"]["template"]["spec"].update(
        restartPolicy="Always"),
    "env value not a string": lambda docs: of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"][
        "containers"][0]["env"].append({"name": "X", "value": 1}),
    "unknown kind": lambda docs: docs.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}),
}


@pytest.mark.parametrize("mistake", SCHEMA_MISTAKES, ids=list(SCHEMA_MISTAKES))
def test_schema_validation_catches(mistake: str, crd_schemas: dict[SchemaKey, dict[str, Any]]) -> None:
    documents = mutated(committed(environments()["production"]))
    SCHEMA_MISTAKES[mistake](documents)
    assert validate(documents, crd_schemas) != []


# --- semantics -------------------------------------------------------------------------------------

def test_manifests_are_consistent(documents: list[Manifest], env: Environment, specs: list[FunctionSpec]) -> None:
    assert semantic_problems(documents, env, specs) == []


def _first_trigger(documents: list[Manifest], ping: bool = False) -> Manifest:
    return next(t for t in of_kind(documents, "Trigger")
                if (t["spec"]["filter"]["attributes"]["type"] == PING_TYPE) == ping)


def _drop_ksvc_of_first_trigger(documents: list[Manifest]) -> None:
    name = _first_trigger(documents)["spec"]["subscriber"]["ref"]["name"]
    documents.remove(find(documents, "Service", name, "serving"))


def _ksvc_env(documents: list[Manifest]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = _ksvc(documents)["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


SEMANTIC_MISTAKES: dict[str, Callable[[list[Manifest]], None]] = {
    "subscriber missing": _drop_ksvc_of_first_trigger,
    "type nobody produces": lambda docs: _first_trigger(docs)["spec"]["filter"]["attributes"].update(
        type="com.fusioncommerce.order.teleported"),
    "dead letters to an unknown topic": lambda docs: of_kind(docs, "KafkaSink")[0]["spec"].update(topic="nowhere"),
    "dead letters to another topic's sink": lambda docs: _first_trigger(docs)["spec"]["delivery"][
        "deadLetterSink"]["ref"].update(name=of_kind(docs, "KafkaSink")[-1]["metadata"]["name"]),
    "secret inlined": lambda docs: _ksvc_env(docs).append(
        {"name": "DATABASE_URL", "value": "postgresql://app:hunter2@db:5432/shop"}),
    "secret from a ConfigMap": lambda docs: next(e for e in _ksvc_env(docs) if e["name"] == "DATABASE_URL").update(
        valueFrom={"configMapKeyRef": {"name": "fusion-config", "key": "DATABASE_URL"}}),
    "Stripe key in a value": lambda docs: _ksvc_env(docs).append({"name": "API", "value": "sk_live_abc123"}),
    "Secret template filled in": lambda docs: of_kind(docs, "Secret")[0]["stringData"].update(catalog="postgres://x"),
    "annotation not a string": lambda docs: _first_trigger(docs)["metadata"]["annotations"].update(
        {"kafka.eventing.knative.dev/delivery.order": True}),
    "scaling off the table": lambda docs: _ksvc(docs)["spec"]["template"]["metadata"]["annotations"].update(
        {AUTOSCALING + "max-scale": "99"}),
    "autoscaling on the Service metadata": lambda docs: _ksvc(docs)["metadata"].setdefault("annotations", {}).update(
        {AUTOSCALING + "min-scale": "1"}),
    "ping from an unknown source": lambda docs: _first_trigger(docs, ping=True)["spec"]["filter"][
        "attributes"].update(source="/apis/v1/namespaces/x/pingsources/none"),
    "backoff not ISO-8601": lambda docs: _first_trigger(docs)["spec"]["delivery"].update(backoffDelay="1s"),
    "backoff policy": lambda docs: _first_trigger(docs)["spec"]["delivery"].update(backoffPolicy="fibonacci"),
    "source from the latest offset": lambda docs: of_kind(docs, "KafkaSource")[0]["spec"].update(
        initialOffset="latest"),
    "cron with six fields": lambda docs: of_kind(docs, "PingSource")[0]["spec"].update(schedule="* * * * * *"),
    "wrong FUNCTION_TARGET": lambda docs: _ksvc_env(docs)[0].update(value="nothing"),
    "wrong namespace": lambda docs: of_kind(docs, "Trigger")[0]["metadata"].update(namespace="default"),
    "health probe with a delay": lambda docs: _ksvc(docs)["spec"]["template"]["spec"]["containers"][0][
        "livenessProbe"].update(initialDelaySeconds=10),
    "duplicate name": lambda docs: docs.append(mutated([of_kind(docs, "Trigger")[0]])[0]),
}


@pytest.mark.parametrize("mistake", SEMANTIC_MISTAKES, ids=list(SEMANTIC_MISTAKES))
def test_semantic_checks_catch(mistake: str, specs: list[FunctionSpec]) -> None:
    env = environments()["production"]
    documents = mutated(committed(env))
    SEMANTIC_MISTAKES[mistake](documents)
    assert semantic_problems(documents, env, specs) != []


# --- what the manifests say ------------------------------------------------------------------------

def _containers(doc: Manifest) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if not isinstance(spec, dict):
        return []
    containers: list[dict[str, Any]] = spec.get("template", {}).get("spec", {}).get("containers", [])
    return containers


def test_services_keep_the_original_scaling_and_resources() -> None:
    assert {n: (s.min_replicas, s.max_replicas, s.cpu_target) for n, s in services().items()} == ORIGINAL_SCALING
    assert {n: (s.cpu_limit, s.memory_limit) for n, s in services().items()} == ORIGINAL_LIMITS


def test_one_knative_service_per_function(documents: list[Manifest], env: Environment,
                                          specs: list[FunctionSpec]) -> None:
    ksvcs = {doc["metadata"]["name"]: doc for doc in of_kind(documents, "Service", "serving.knative.dev")}
    assert set(ksvcs) == {spec.name for spec in specs}
    for spec in specs:
        (container,) = ksvcs[spec.name]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"ghcr.io/fusioncommerce/{spec.service}:{env.image_tag}"
        assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
        values = {e["name"]: e.get("value") for e in container["env"]}
        assert values["FUNCTION_TARGET"] == spec.target
        assert values["FUNCTION_SOURCE"] == f"functions/{spec.service.replace('-', '_')}/main.py"
        limits = ORIGINAL_LIMITS[spec.service]
        assert container["resources"]["limits"] == {"cpu": limits[0], "memory": limits[1]}
        stripe = {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"} <= set(values)
        assert stripe == (spec.service == "payments"), "Stripe secrets go to payments only"


def test_requests_are_half_the_limits(documents: list[Manifest]) -> None:
    halves = {"250m": "125m", "500m": "250m", "1000m": "500m", "256Mi": "128Mi", "512Mi": "256Mi", "1Gi": "512Mi"}
    for ksvc in of_kind(documents, "Service", "serving.knative.dev"):
        resources = ksvc["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"] == {k: halves[v] for k, v in resources["limits"].items()}


def test_scale_to_zero_except_production_floors(documents: list[Manifest], env: Environment) -> None:
    for ksvc in of_kind(documents, "Service", "serving.knative.dev"):
        service = ksvc["metadata"]["labels"]["fusioncommerce.dev/service"]
        floor, ceiling, target = ORIGINAL_SCALING[service]
        annotations = ksvc["spec"]["template"]["metadata"]["annotations"]
        assert all(isinstance(v, str) for v in annotations.values())
        assert annotations[AUTOSCALING + "min-scale"] == (str(floor) if env.name == "production" else "0")
        assert annotations[AUTOSCALING + "max-scale"] == str(ceiling)
        assert annotations[AUTOSCALING + "target-utilization-percentage"] == str(target)
        assert annotations[AUTOSCALING + "class"] == "kpa.autoscaling.knative.dev"
        assert AUTOSCALING + "metric" not in annotations or annotations[AUTOSCALING + "metric"] != "cpu"


def test_triggers_carry_each_handlers_delivery_policy(documents: list[Manifest], specs: list[FunctionSpec]) -> None:
    triggers = of_kind(documents, "Trigger")
    for spec in (s for s in specs if s.kind == "cloudevent"):
        policy = spec.delivery or Delivery()
        for topic_name in spec.topics:
            (trigger,) = [t for t in triggers if t["spec"]["subscriber"]["ref"]["name"] == spec.name
                          and t["spec"]["filter"]["attributes"] == {"type": topic(topic_name).type}]
            delivery = trigger["spec"]["delivery"]
            assert delivery["retry"] == policy.retries
            assert delivery["backoffPolicy"] == policy.backoff
            assert delivery["backoffDelay"] == iso_duration(policy.delay)
            assert delivery["timeout"] == iso_duration(policy.timeout)
            sink = find(documents, "KafkaSink", delivery["deadLetterSink"]["ref"]["name"])
            assert sink["spec"]["topic"] == f"{topic_name}.dlq"
            order = trigger["metadata"]["annotations"]["kafka.eventing.knative.dev/delivery.order"]
            assert order == ("ordered" if policy.ordered else "unordered")


def test_each_scheduled_function_has_its_own_ping_source(documents: list[Manifest], env: Environment,
                                                         specs: list[FunctionSpec]) -> None:
    apps = KNATIVE_DIR / environment_path(env) / "apps"
    raw = "".join(path.read_text() for path in apps.glob("*.yaml"))
    for spec in (s for s in specs if s.kind == "scheduled"):
        source = find(documents, "PingSource", f"{spec.name}-schedule")
        assert source["spec"]["schedule"] == spec.schedule
        assert f"schedule: '{spec.schedule}'" in raw, "the schedule is quoted in YAML"
        assert source["spec"]["sink"]["ref"] == {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                                 "name": "fusion"}
        trigger = find(documents, "Trigger", f"{spec.name}-on-schedule")
        assert trigger["spec"]["filter"]["attributes"] == {
            "type": "dev.knative.sources.ping",
            "source": f"/apis/v1/namespaces/{env.namespace}/pingsources/{spec.name}-schedule",
        }
    data = [source["spec"]["data"] for source in of_kind(documents, "PingSource")]
    assert len(data) == len(set(data)), "every PingSource sends its own data"


def test_broker_and_kafka_source(documents: list[Manifest], env: Environment) -> None:
    broker = find(documents, "Broker", "fusion")
    assert broker["metadata"]["annotations"] == {"eventing.knative.dev/broker.class": "Kafka"}
    config = find(documents, "ConfigMap", broker["spec"]["config"]["name"])
    assert config["data"]["bootstrap.servers"] == env.kafka_brokers
    assert config["data"]["default.topic.replication.factor"] == {"base": "1", "staging": "1",
                                                                   "production": "3"}[env.name]
    (source,) = of_kind(documents, "KafkaSource")
    assert source["spec"]["topics"] == sorted(TOPICS)
    assert source["spec"]["initialOffset"] == "earliest"
    assert source["spec"]["consumerGroup"] == f"{env.namespace}-fusion-topics"
    assert source["spec"]["sink"]["ref"]["kind"] == "Broker"


def test_jobs_relay_and_no_router(documents: list[Manifest], env: Environment) -> None:
    migrate = find(documents, "Job", "migrate")
    assert migrate["apiVersion"] == "batch/v1"
    (container,) = migrate["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["fusion", "migrate", "up"]
    assert container["image"] == f"ghcr.io/fusioncommerce/platform:{env.image_tag}"
    relay = find(documents, "Deployment", "outbox-relay")
    assert relay["spec"]["template"]["spec"]["containers"][0]["command"] == ["fusion", "relay"]
    commands = [c.get("command", []) for doc in documents for c in _containers(doc)]
    assert not any("router" in command for command in commands), "Knative Eventing replaces the router"
    topics_script = find(documents, "Job", "create-topics")["spec"]["template"]["spec"]["containers"][0]["command"][2]
    for topic_ in TOPICS.values():
        assert f"create {topic_.name} {env.partitions(topic_)} {env.replication} " in topics_script
        assert f"create {topic_.dlq} " in topics_script


def test_secrets_are_only_templates_outside_the_applied_folders(env: Environment) -> None:
    root = KNATIVE_DIR / environment_path(env)
    for folder in ("platform", "jobs", "apps"):
        documents = [doc for path in (root / folder).glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
                     if doc]
        assert of_kind(documents, "Secret") == []
    templates = [doc for doc in yaml.safe_load_all((root / "secrets" / "secrets.template.yaml").read_text()) if doc]
    kafka = {"fusion-kafka"} if env.kafka_tls else set()
    assert {doc["metadata"]["name"] for doc in templates} == {"fusion-database", "fusion-stripe", "fusion-shipping",
                                                                    "n8n-credentials", *kafka}
    assert all(set(doc["stringData"].values()) == {""} and "data" not in doc for doc in templates)


def test_platform_files_apply_the_namespace_first(env: Environment) -> None:
    platform = sorted(path.name for path in (KNATIVE_DIR / environment_path(env) / "platform").glob("*.yaml"))
    assert platform[0] == "00-namespace.yaml"


def test_every_process_reads_the_identity_provider_by_reference(documents: list[Manifest], env: Environment) -> None:
    [config] = [doc for doc in of_kind(documents, "ConfigMap") if doc["metadata"]["name"] == "fusion-config"]
    assert config["data"]["OIDC_ISSUER"].startswith("https://") and config["data"]["OIDC_AUDIENCE"]
    readers = [doc for doc in documents if doc["kind"] in ("Service", "Deployment", "Job")
               and any(e.get("name") == "FUSION_ENV" for c in _containers(doc) for e in c.get("env", []))]
    assert readers
    for doc in readers:
        for container in _containers(doc):
            env_vars = {e["name"]: e for e in container.get("env", [])}
            for name in ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_SCOPE_CLAIM"):
                assert env_vars[name]["valueFrom"]["configMapKeyRef"] == {"name": "fusion-config", "key": name}, (
                    doc["metadata"]["name"], name)


def test_only_the_event_plane_delivers_and_nothing_is_public(documents: list[Manifest], env: Environment,
                                                          specs: list[FunctionSpec]) -> None:
    by_name = {spec.name: spec for spec in specs}
    for ksvc in of_kind(documents, "Service"):
        if ksvc["apiVersion"].startswith("serving.knative.dev"):
            assert ksvc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
            pod_labels = ksvc["spec"]["template"]["metadata"]["labels"]
            assert pod_labels["fusioncommerce.dev/kind"] == by_name[ksvc["metadata"]["name"]].kind
    function_triggers = [t for t in of_kind(documents, "Trigger") if t["spec"]["subscriber"].get("ref", {}).get(
        "kind") == "Service" and t["spec"]["subscriber"]["ref"]["name"] in by_name]
    assert function_triggers
    for trigger in function_triggers:
        subscriber = trigger["spec"]["subscriber"]
        assert subscriber["audience"] == f"functions.fusioncommerce/{subscriber['ref']['name']}"
    [policy] = of_kind(documents, "EventPolicy")
    assert policy["spec"]["to"] == [{"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                             "name": "fusion"}}]
    senders = {(ref["ref"]["kind"], ref["ref"]["name"]) for ref in policy["spec"]["from"]}
    sources = {(doc["kind"], doc["metadata"]["name"]) for doc in documents
               if doc["kind"] in ("KafkaSource", "PingSource")}
    assert senders == sources, "exactly our sources may send to the Broker"
    [network] = of_kind(documents, "NetworkPolicy")
    assert network["spec"]["podSelector"] == {"matchExpressions": [{"key": "fusioncommerce.dev/kind",
                                                                    "operator": "Exists"}]}
    assert network["spec"]["policyTypes"] == ["Ingress"]


def test_kafka_speaks_tls_and_scram_outside_development(documents: list[Manifest], env: Environment) -> None:
    [source] = of_kind(documents, "KafkaSource")
    [broker_config] = [d for d in of_kind(documents, "ConfigMap") if d["metadata"]["name"] == "kafka-broker-config"]
    sinks = of_kind(documents, "KafkaSink")
    [relay] = [d for d in of_kind(documents, "Deployment") if d["metadata"]["name"] == "outbox-relay"]
    relay_env = {e["name"]: e for e in _containers(relay)[0]["env"]}
    if not env.kafka_tls:
        assert "net" not in source["spec"] and "auth.secret.ref.name" not in broker_config["data"]
        assert "KAFKA_SECURITY_PROTOCOL" not in relay_env
        return
    assert source["spec"]["net"]["tls"]["enable"] is True and source["spec"]["net"]["sasl"]["enable"] is True
    assert broker_config["data"]["auth.secret.ref.name"] == "fusion-kafka"
    assert all(sink["spec"]["auth"] == {"secret": {"ref": {"name": "fusion-kafka"}}} for sink in sinks)
    assert relay_env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "fusion-kafka", "key": "password"}
    [job] = [d for d in of_kind(documents, "Job") if d["metadata"]["name"] == "create-topics"]
    assert "tls.enabled=true" in _containers(job)[0]["command"][2]
