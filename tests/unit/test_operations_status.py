"""Where the operations status and `fusion status` read the platform: a cluster's pods read as the health of
services, the processes' addresses in Compose, and each environment's own Prometheus series."""

from __future__ import annotations

from pathlib import Path

import yaml

from fusion.knative.environments import environments
from fusion.knative.platform import settings_config_map
from fusion.observe import Snapshot, local_targets, pods_by_service, service_health
from fusion.registry import load_all, services

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_a_service_is_healthy_when_every_pod_of_its_functions_is() -> None:
    specs = list(load_all().values())
    pods = {"create-order-00003-deployment-7d9f-abcde": True, "get-order-00001-deployment-1-x": False,
            "list-products-00002-deployment-5-y": True, "outbox-relay-6c7b9-z": True, "prometheus-0": True}
    assert pods_by_service(pods, specs) == {"orders": False, "catalog": True, "relay": True}


def test_the_longest_function_name_owns_a_pod() -> None:
    specs = list(load_all().values())
    names = {spec.name for spec in specs}
    assert {"get-shipment", "get-shipment-label"} <= names
    assert pods_by_service({"get-shipment-label-00001-deployment-q": True}, specs) == {"shipping": True}


def test_a_snapshot_of_pods_reads_as_services() -> None:
    read = service_health(Snapshot(60, health={"list-products-00002-deployment-5-y": False}))
    assert read.health == {"catalog": False}


def test_in_compose_every_process_is_read_where_compose_serves_it() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    targets = {target.name: target for target in local_targets("http://{service}:{port}")}
    assert list(targets) == [*services(), "relay", "router"]
    assert targets["orders"].health_url == f"http://orders:{services()['orders'].port}/health"
    for part, container in (("relay", "outbox-relay"), ("router", "router")):
        port = compose[container]["environment"]["FUSION_METRICS_ADDRESS"].rsplit(":", 1)[1]
        assert targets[part].metrics_url == f"http://{container}:{port}/metrics"


def test_locally_every_process_is_read_on_this_machine() -> None:
    targets = local_targets()
    assert all(target.metrics_url.startswith("http://127.0.0.1:") for target in targets)
    assert len(targets) == len(services()) + 2


def test_each_environment_reads_only_its_own_namespace_from_the_shared_prometheus() -> None:
    selectors = {env.namespace: settings_config_map(env)["data"]["OPERATIONS_PROMETHEUS_SELECTOR"]
                 for env in environments().values()}
    assert len(selectors) == len(environments())
    assert all(selector == f'namespace="{namespace}"' for namespace, selector in selectors.items())
