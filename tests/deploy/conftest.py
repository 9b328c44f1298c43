"""Fixtures for the deployment checks: the committed manifests per environment and the upstream schemas."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_support import ENV_IDS, ENVIRONMENTS, committed, require_schema

from fusion.knative.environments import Environment
from fusion.knative.resources import Manifest
from fusion.knative.schemas import SchemaKey, load_crd_schemas
from fusion.knative.specs import load_specs
from fusion.registry import FunctionSpec


@pytest.fixture(scope="session")
def crd_schemas() -> dict[SchemaKey, dict[str, Any]]:
    """The Knative CRDs and Gateway API's Gateway and HTTPRoute, as released upstream."""
    return {**load_crd_schemas(require_schema("knative")), **load_crd_schemas(require_schema("gateway-api"))}


@pytest.fixture(scope="session")
def specs() -> list[FunctionSpec]:
    return load_specs()


@pytest.fixture(params=ENVIRONMENTS, ids=ENV_IDS)
def env(request: pytest.FixtureRequest) -> Environment:
    environment: Environment = request.param
    return environment


@pytest.fixture
def documents(env: Environment) -> list[Manifest]:
    return committed(env)
