"""The running platform keeps docs/openapi.json: Schemathesis fuzzes each service's operations with every
check (no server error, only documented statuses and content types, answers matching their schemas,
invalid input refused, valid input accepted), as an admin holding every staff scope.

The exceptions, each a rule no JSON schema can state, are in schemathesis.toml beside this file; the one
check left out, and why, is below.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from platform_runner import RunningPlatform

from fusion.openapi import DOCUMENT_PATH
from fusion.registry import services

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 20  # per operation and phase
BUDGET = 260.0  # seconds for every service together, so the fuzzer stays a few minutes on two cores
SERVICES = list(services())
CASES_LINE = re.compile(r"^\s*(\d+ generated.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def deadline() -> Iterator[float]:
    yield time.monotonic() + BUDGET


def schemathesis_run(platform: RunningPlatform, service: str) -> list[str]:
    assert platform.tokens is not None
    return [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", str(DOCUMENT_PATH),
        "--url", platform.url(service), "--include-tag", service,
        "--header", f"Authorization: Bearer {platform.tokens.all_staff()}",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES), "--no-color",
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_keeps_its_contract(platform: RunningPlatform, service: str, deadline: float, tmp_path: Path,
                                        record_property: Callable[[str, object], None]) -> None:
    budget = deadline - time.monotonic()
    assert budget > 10, "the fuzzing budget is spent before this service"
    # In a scratch directory: Schemathesis keeps its example database and reports where it runs.
    result = subprocess.run(schemathesis_run(platform, service), cwd=tmp_path, capture_output=True, text=True,
                            timeout=budget)
    found = CASES_LINE.search(result.stdout)
    cases = f"{service}: {found.group(1) if found else 'no cases'}"
    record_property("cases", cases)
    print(cases)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
    assert found is not None and not found.group(1).startswith("0 generated")
