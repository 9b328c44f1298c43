"""What a smoke run found: one result per step, and the report printed or emitted as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class StepResult:
    name: str
    outcome: Outcome
    seconds: float
    detail: str


@dataclass(frozen=True)
class SmokeReport:
    targets: dict[str, str]
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.outcome == "pass" for step in self.steps)

    def count(self, outcome: Outcome) -> int:
        return sum(step.outcome == outcome for step in self.steps)

    def summary(self) -> str:
        line = f"smoke: {self.count('pass')} passed, {self.count('fail')} failed"
        skipped = self.count("skip")
        return f"{line}, {skipped} skipped" if skipped else line

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "skipped": self.count("skip"),
            "targets": self.targets,
            "steps": [asdict(step) for step in self.steps],
        }
