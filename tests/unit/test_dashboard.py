"""The Grafana dashboard reads the series the code exports, and shows every rollback criterion."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fusion import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fusioncommerce.json"
DECLARED = {value for name, value in vars(metrics).items() if name.isupper() and str(value).startswith("fusion_")}


def panels() -> list[dict[str, Any]]:
    return [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]


def test_every_series_the_dashboard_reads_is_one_the_code_exports() -> None:
    read = {re.sub(r"_(bucket|count|sum)$", "", name)
            for panel in panels() for target in panel["targets"] for name in re.findall(r"fusion_\w+", target["expr"])}
    assert read and read <= DECLARED, read - DECLARED


def test_every_rollback_criterion_has_a_panel_with_its_limit() -> None:
    titles = " | ".join(panel["title"] for panel in panels())
    for criterion in ("Error rate (5xx share, limit 1 %)", "2x its baseline", "Unhealthy pods (limit 2)",
                      "consumer lag (limit 5,000)", "Integrity"):
        assert criterion.lower() in titles.lower(), criterion
    limits = {panel["title"]: panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [{}])[-1].get("value")
              for panel in panels()}
    assert limits["Error rate (5xx share, limit 1 %)"] == 0.01
    assert limits["Largest consumer lag (limit 5,000)"] == 5000
