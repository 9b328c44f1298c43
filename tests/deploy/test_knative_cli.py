"""`python -m fusion.knative`: what the CLI and CI call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusion.knative.__main__ import main
from fusion.knative.routing import registry_routes
from fusion.knative.specs import load_specs


def test_check_passes_on_the_committed_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert "matches the function registry" in capsys.readouterr().out


def test_check_fails_and_explains_when_a_file_drifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import fusion.knative.__main__ as cli

    monkeypatch.setattr(cli, "check", lambda: ["knative/base/apps/orders.yaml: differs from the registry"])
    assert main(["check"]) == 1
    assert "run `fusion knative render`" in capsys.readouterr().err


def test_render_one_environment_needs_an_output_folder(tmp_path: Path) -> None:
    assert main(["render", "--environment", "production"]) == 2
    assert main(["render", "--environment", "production", "--image-tag", "v9.9.9", "--out", str(tmp_path)]) == 0
    assert "ghcr.io/fusioncommerce/orders:v9.9.9" in (tmp_path / "apps" / "orders.yaml").read_text()


def test_routes_prints_the_trigger_routing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "--environment", "staging"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {name: sorted(types) for name, types in registry_routes(load_specs()).items()}
