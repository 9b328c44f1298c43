"""Every setting a container reads from a ConfigMap by reference is there: a missing key would keep the pod
from starting (CreateContainerConfigError), long after the manifests were applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from deploy_support import committed

from fusion.knative.environments import Environment, environments

ENVIRONMENTS = list(environments().values())


def _references(node: Any) -> Iterator[tuple[str, str]]:
    """(ConfigMap, key) of every configMapKeyRef anywhere in a manifest."""
    if isinstance(node, dict):
        ref = node.get("configMapKeyRef")
        if isinstance(ref, dict):
            yield str(ref["name"]), str(ref["key"])
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env.name)
def test_every_config_map_reference_names_a_rendered_key(env: Environment) -> None:
    documents = committed(env)
    keys = {doc["metadata"]["name"]: set(doc.get("data", {})) for doc in documents if doc["kind"] == "ConfigMap"}
    missing = sorted({(doc["metadata"]["name"], name, key) for doc in documents for name, key in _references(doc)
                      if name in keys and key not in keys[name]})
    assert missing == []


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env.name)
def test_the_storefront_reads_its_sign_in_client(env: Environment) -> None:
    documents = committed(env)
    readers = {doc["metadata"]["name"] for doc in documents if doc["kind"] == "Service"
               and ("fusion-config", "STOREFRONT_OIDC_CLIENT_ID") in set(_references(doc))}
    assert readers and all(doc["metadata"]["labels"]["fusioncommerce.dev/service"] == "storefront"
                           for doc in documents if doc["kind"] == "Service" and doc["metadata"]["name"] in readers)
