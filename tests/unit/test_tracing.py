"""Traces off (no OTEL_EXPORTER_OTLP_ENDPOINT): the incoming traceparent is passed on and no SDK is loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fusion import tracing
from fusion.binding import Event

ROOT = Path(__file__).resolve().parents[2]
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_without_an_endpoint_a_span_passes_the_incoming_traceparent_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracing.ENDPOINT_VARIABLE, raising=False)
    with tracing.span("POST create-order", "server", PARENT) as traced:
        assert traced.traceparent == PARENT == tracing.current_traceparent.get()
    assert tracing.current_traceparent.get() is None
    event = Event({"id": "e-1", "traceparent": PARENT})
    assert tracing.carried_by(event, traced) is event


def test_without_an_endpoint_no_opentelemetry_module_is_imported() -> None:
    probe = textwrap.dedent(f"""
        import sys
        from fusion import declare, relay, tracing
        with tracing.span("x", "consumer", {PARENT!r}):
            pass
        print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
    """)
    env = {name: value for name, value in os.environ.items() if name != tracing.ENDPOINT_VARIABLE}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
