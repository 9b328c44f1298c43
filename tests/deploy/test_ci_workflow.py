"""The CI/CD pipeline: valid against the GitHub workflow schema, and in the order the release needs."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import yaml
from deploy_support import PROJECT_ROOT, require_schema
from jsonschema import Draft7Validator

from fusion.registry import services

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
PIPELINE = ["lint", "typecheck", "test", "images", "deploy-staging", "smoke-staging", "deploy-production"]


def _workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    document["on"] = document.pop(True)
    return document


def _validator() -> Draft7Validator:
    return Draft7Validator(json.loads(require_schema("github-workflow.json").read_text()))


def _run_lines(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_workflow_follows_the_github_workflow_schema() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(_workflow())]
    assert errors == []


def test_workflow_validation_catches_mistakes() -> None:
    broken = _workflow()
    del broken["jobs"]["lint"]["runs-on"]
    broken["jobs"]["test"]["timeout-minutes"] = "soon"
    assert list(_validator().iter_errors(broken))


def test_stages_run_in_release_order() -> None:
    jobs = _workflow()["jobs"]
    assert list(jobs) == PIPELINE
    for before, after in itertools.pairwise(PIPELINE):
        assert jobs[after]["needs"] == before


def test_quality_gates() -> None:
    jobs = _workflow()["jobs"]
    assert "ruff check" in _run_lines(jobs["lint"])
    assert "mypy" in _run_lines(jobs["typecheck"])
    tests = _run_lines(jobs["test"])
    assert "--cov-fail-under=85" in tests and "python -m fusion.knative check" in tests
    assert "fetch-schemas.sh" in tests, "CI validates against the real schemas instead of skipping"


def test_one_image_per_service_plus_the_platform_image() -> None:
    images = _workflow()["jobs"]["images"]
    assert images["strategy"]["matrix"]["image"] == [*services(), "platform"]
    steps = json.dumps(images["steps"])
    assert "sha-${GITHUB_SHA::7}" in steps and "${GITHUB_REF_NAME}" in steps
    assert "trivy" in steps and "CRITICAL" in steps


def test_staging_then_smoke_then_approved_production() -> None:
    jobs = _workflow()["jobs"]
    staging, smoke, production = jobs["deploy-staging"], jobs["smoke-staging"], jobs["deploy-production"]
    assert staging["environment"]["name"] == "staging"
    assert '--image-tag "sha-${GITHUB_SHA::7}"' in _run_lines(staging)
    assert "deploy/kube-deploy.sh build/staging fusioncommerce-staging" in _run_lines(staging)
    assert "fusion smoke --base-url" in _run_lines(smoke)
    assert production["environment"]["name"] == "production", "a protected environment: manual approval"
    assert "startsWith(github.ref, 'refs/tags/v')" in production["if"]
    assert '--image-tag "$GITHUB_REF_NAME"' in _run_lines(production)
    assert "deploy/kube-deploy.sh build/production fusioncommerce-production" in _run_lines(production)


def test_production_is_a_canary_behind_the_rollback_gate() -> None:
    production = _workflow()["jobs"]["deploy-production"]
    runs = [step.get("run", "") for step in production["steps"]]

    def first(text: str) -> int:
        return next(n for n, run in enumerate(runs) if text in run)

    deploy = first("deploy/kube-deploy.sh build/production")
    assert first("fusion gate --record-baseline") < first("deploy/canary.sh pin") < deploy
    split = first('deploy/canary.sh split "$NS" build/canary "$CANARY_PERCENT"')
    assert deploy < split < first("fusion gate --baseline")
    gate = production["steps"][first("fusion gate --baseline")]
    assert "--no-integrity" in gate["run"] and "fusion verify" in gate["run"], "integrity checked in the cluster"
    rollback = production["steps"][first("deploy/canary.sh rollback")]
    assert rollback["if"] == "failure() && steps.pin.outcome == 'success'"
    assert first("deploy/canary.sh rollback") < first("deploy/canary.sh promote")
    assert "kn service update" in (PROJECT_ROOT / "deploy" / "canary.sh").read_text()


def test_every_action_is_pinned_by_commit_with_its_tag_in_a_comment() -> None:
    lines = [line.strip() for line in (PROJECT_ROOT / ".github" / "workflows" / "ci.yml").read_text().splitlines()]
    uses = [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]
    assert uses
    for reference in uses:
        action, _, rest = reference.partition("@")
        commit, _, comment = rest.partition("#")
        assert re.fullmatch(r"[0-9a-f]{40}", commit.strip()), f"{action} is not pinned by commit: {reference}"
        assert comment.strip().startswith(("v", "0")), f"{action}: name the tag in a comment"
