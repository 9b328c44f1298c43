"""One running platform for the contract fuzzer: `fusion dev` on shifted ports with its own database,
broker and issuer (as tests/e2e runs it), and the cases fuzzed per service in the session summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_runner import RunningPlatform, launch, new_database
from support import free_port

from fusion.local.broker import start_broker
from fusion.local.process import ManagedProcess

FUZZ_OFFSET = 500


@pytest.fixture(scope="session")
def platform(postgres: ManagedProcess, infra_dir: Path) -> Iterator[RunningPlatform]:
    broker = start_broker(free_port(), log_file=infra_dir / "fuzz-broker.log")
    try:
        running = launch(new_database(postgres), broker.url, infra_dir / "fuzz-state", FUZZ_OFFSET,
                         infra_dir / "fuzz-platform.out", FUSION_STRIPE_PORT=str(free_port()))
        yield running
        assert running.stop() == 0
    finally:
        broker.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The cases each service was fuzzed with (recorded by the tests as their `cases` property)."""
    reports = [report for outcome in ("passed", "failed") for report in terminalreporter.stats.get(outcome, [])]
    counted = [value for report in reports for name, value in getattr(report, "user_properties", ()) if name == "cases"]
    if counted:
        terminalreporter.section("contract fuzzing: cases per service")
        for line in counted:
            terminalreporter.write_line(str(line))
