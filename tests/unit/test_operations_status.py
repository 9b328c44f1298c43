"""How the operations status reads a cluster's pods as the health of services."""

from __future__ import annotations

from functions.operations.flow import pods_by_service
from fusion.registry import load_all


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
