"""Orders, inventory and group buying reach the catalog's product listing in the cluster: the address is rendered once,
into fusion-config, and read by reference only by the services that look products up."""

from __future__ import annotations

import pytest
from deploy_support import committed, find, of_kind

from fusion.catalog_lookup import LOOKUP_ROUTE
from fusion.config import SERVICE_SETTINGS
from fusion.knative.environments import Environment, environments
from fusion.knative.resources import CONFIG_MAP
from fusion.registry import load_all

ENVIRONMENTS = list(environments().values())


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env.name)
def test_the_catalog_address_is_the_cluster_local_address_of_the_listing(env: Environment) -> None:
    documents = committed(env)
    [listing] = [spec for spec in load_all().values() if LOOKUP_ROUTE in spec.routes]
    assert listing.name == "list-products"
    address = find(documents, "ConfigMap", CONFIG_MAP)["data"]["CATALOG_URL"]
    assert address == f"http://list-products.{env.namespace}.svc.cluster.local"
    find(documents, "Service", listing.name, "serving.knative.dev")  # the Knative Service it names exists


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env.name)
def test_only_the_services_that_look_products_up_read_the_address(env: Environment) -> None:
    readers = set()
    for ksvc in of_kind(committed(env), "Service", "serving.knative.dev"):
        [container] = ksvc["spec"]["template"]["spec"]["containers"]
        entries = [entry for entry in container["env"] if entry["name"] == "CATALOG_URL"]
        if entries:
            assert entries == [{"name": "CATALOG_URL",
                                "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": "CATALOG_URL"}}}]
            readers.add(ksvc["metadata"]["labels"]["fusioncommerce.dev/service"])
    assert readers == {"orders", "inventory", "group-commerce"} == {
        service for service, names in SERVICE_SETTINGS.items() if "CATALOG_URL" in names}
