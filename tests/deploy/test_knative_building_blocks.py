"""Pure helpers of the renderer: names, quantities, durations, skipping services not written yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion.knative import specs
from fusion.knative.resources import dns_name, half, iso_duration


def test_names_are_dns_labels_and_long_ones_stay_unique() -> None:
    assert dns_name("reserve-stock", "order.created") == "reserve-stock-order-created"
    long_a = dns_name("release-stock-on-payment-failure", "group-commerce.campaign.successful")
    long_b = dns_name("release-stock-on-payment-failure", "group-commerce.campaign.expired.dlq.x")
    assert len(long_a) <= 63 and len(long_b) <= 63 and long_a != long_b


@pytest.mark.parametrize(("limit", "request_"), [("1000m", "500m"), ("500m", "250m"), ("1", "500m"),
                                                  ("1Gi", "512Mi"), ("512Mi", "256Mi")])
def test_requests_are_half_the_limits(limit: str, request_: str) -> None:
    assert half(limit) == request_


def test_unknown_quantities_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        half("1.5Gi")


def test_delivery_durations_are_iso_8601() -> None:
    assert [iso_duration(s) for s in (0.5, 1, 2.5, 30.0)] == ["PT0.5S", "PT1S", "PT2.5S", "PT30S"]
    with pytest.raises(ValueError):
        iso_duration(0)


def test_a_service_not_written_yet_is_skipped_but_a_broken_import_is_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(specs, "FUNCTION_MODULES", ("functions.catalog.main", "functions.not_written_yet.main"))
    assert any(spec.service == "catalog" for spec in specs.load_specs())

    broken = tmp_path / "half_written_service"
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "main.py").write_text("import a_package_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(specs, "FUNCTION_MODULES", ("half_written_service.main",))
    with pytest.raises(ModuleNotFoundError, match="a_package_nobody_installed"):
        specs.load_specs()
