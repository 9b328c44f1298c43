"""Reading the registry imports every service's module, but only for what it declares: a process that serves
another part (the relay, the operations service, the gateway) has none of those services' settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a production relay or operations pod has: its own settings, none of the services' (no Stripe keys,
# no carrier secret, no catalog address).
PRODUCTION = {"FUSION_ENV": "production", "DATABASE_URL": "postgresql://relay:secret@db/ecommerce",
              "OIDC_ISSUER": "https://id.example.com", "OIDC_AUDIENCE": "fusioncommerce",
              "EVENTING_OIDC_ISSUER": "https://kubernetes.default.svc", "KAFKA_BROKERS": "kafka:9092"}
BASE = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}


def run(probe: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], cwd=ROOT, env={**BASE, **PRODUCTION},
                          capture_output=True, text=True, timeout=60)


def test_the_registry_is_read_where_no_service_s_settings_are() -> None:
    result = run("""
        from fusion import logs
        from fusion.registry import load_all, services
        specs = load_all()
        print(len(specs), sorted(services()) == sorted({spec.service for spec in specs.values()}), logs._context.get())
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    count, every_service, context = result.stdout.split(maxsplit=2)
    assert int(count) > 50 and every_service == "True"
    assert context.strip() == "{}", "no service bound itself to this process's logs"


def test_a_service_served_where_its_settings_are_missing_still_refuses_to_start() -> None:
    result = run("import functions.payments.main")
    assert result.returncode != 0 and "STRIPE_SECRET_KEY" in result.stderr
