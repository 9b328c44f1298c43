"""Helpers shared by the deployment checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fusion.knative.environments import Environment, environments
from fusion.knative.render import KNATIVE_DIR, environment_path, load_manifests
from fusion.knative.resources import Manifest
from fusion.knative.schemas import shared_schemas_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = list(environments().values())
ENV_IDS = [env.name for env in ENVIRONMENTS]


def require_schema(relative: str) -> Path:
    """The upstream schema file, or a skip that says exactly what is missing and how to get it."""
    folder = shared_schemas_dir()
    path = folder / relative
    if not path.exists():
        pytest.skip(f"schema {path} is absent (expected the shared schemas folder at {folder}); "
                    "run deploy/fetch-schemas.sh to download it: nothing was validated against it")
    return path


def committed(env: Environment) -> list[Manifest]:
    return load_manifests(KNATIVE_DIR / environment_path(env))


def find(documents: list[Manifest], kind: str, name: str, api_prefix: str = "") -> Manifest:
    for doc in documents:
        if doc["kind"] == kind and doc["metadata"]["name"] == name and doc["apiVersion"].startswith(api_prefix):
            return doc
    raise AssertionError(f"{kind}/{name} not found")


def of_kind(documents: list[Manifest], kind: str, api_prefix: str = "") -> list[Manifest]:
    return [doc for doc in documents if doc["kind"] == kind and doc["apiVersion"].startswith(api_prefix)]


def mutated(documents: list[Manifest]) -> list[Manifest]:
    return copy.deepcopy(documents)
