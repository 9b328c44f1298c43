"""The runbook covers what an operator needs, and says plainly what was and was not run."""

from __future__ import annotations

import pytest
from deploy_support import PROJECT_ROOT

RUNBOOK = (PROJECT_ROOT / "docs" / "operations.md").read_text()


@pytest.mark.parametrize("needle", [
    "Nothing in this runbook has been run against a real cluster",
    "kubectl -n $NS create secret generic fusion-database",
    "kubectl apply -f $DIR/platform/",
    "kubectl apply -f $DIR/jobs/migrate.yaml",
    "kubectl apply -f $DIR/apps/",
    "kn service list",
    "--traffic stable=90,canary=10",
    "--tag create-order-00008=canary",
    "--traffic create-order-00007=100",
    "fusion migrate down <service>",
    "alembic downgrade <service>@-1",
    "fusion dlq list order.created",
    "fusion dlq replay order.created",
    "--scale-min",
    "> 1 % of requests",
    "p95 > 2x the pre-deploy baseline",
    "> 5,000 messages",
])
def test_runbook_mentions(needle: str) -> None:
    assert needle in RUNBOOK
