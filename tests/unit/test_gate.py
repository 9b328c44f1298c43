"""The rollback gate and the figures it reads, on canned /metrics snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion import gate, metrics
from fusion.dataplane import Verdict
from fusion.gate import Baseline, Thresholds, evaluate
from fusion.observe import Figures, Snapshot, from_scrapes, increase, parse, quantile
from fusion.router import delivery_outcome

BEFORE = """
# TYPE fusion_http_requests_total counter
fusion_http_requests_total{service="orders",function="create-order",route="POST /orders",status="201"} 100
fusion_http_requests_total{service="orders",function="create-order",route="POST /orders",status="503"} 0
# TYPE fusion_http_request_duration_seconds histogram
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="0.05"} 50
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="0.1"} 90
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="0.5"} 100
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="+Inf"} 100
fusion_http_request_duration_seconds_count{service="orders",function="create-order",route="POST /orders"} 100
fusion_http_request_duration_seconds_sum{service="orders",function="create-order",route="POST /orders"} 5
"""
AFTER = """
# TYPE fusion_http_requests_total counter
fusion_http_requests_total{service="orders",function="create-order",route="POST /orders",status="201"} 290
fusion_http_requests_total{service="orders",function="create-order",route="POST /orders",status="503"} 10
# TYPE fusion_http_request_duration_seconds histogram
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="0.05"} 50
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="0.1"} 90
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="0.5"} 300
fusion_http_request_duration_seconds_bucket{service="orders",function="create-order",route="POST /orders",le="+Inf"} 300
fusion_http_request_duration_seconds_count{service="orders",function="create-order",route="POST /orders"} 300
fusion_http_request_duration_seconds_sum{service="orders",function="create-order",route="POST /orders"} 105
# TYPE fusion_consumer_lag_messages gauge
fusion_consumer_lag_messages{handler="reserve-stock",group="fusion.reserve-stock"} 7000
fusion_consumer_lag_messages{handler="confirm-order",group="fusion.confirm-order"} 3
# TYPE fusion_event_deliveries_total counter
fusion_event_deliveries_total{handler="reserve-stock",outcome="dead_lettered",attempt="4"} 2
fusion_event_deliveries_total{handler="reserve-stock",outcome="done",attempt="1"} 40
# TYPE fusion_outbox_waiting_rows gauge
fusion_outbox_waiting_rows{schema="orders"} 12
# TYPE fusion_outbox_oldest_age_seconds gauge
fusion_outbox_oldest_age_seconds{schema="orders"} 4.5
"""
HEALTHY = {"orders": True, "catalog": True, "router": True}


def snapshot(health: dict[str, bool] = HEALTHY) -> Snapshot:
    return from_scrapes(parse(BEFORE), parse(AFTER), 60.0, health)


def test_the_window_counts_what_happened_between_the_scrapes() -> None:
    figures = snapshot().functions["create-order"]
    assert (figures.requests, figures.errors) == (200, 10)
    assert figures.error_rate == pytest.approx(0.05)
    # all 200 new observations fell between 0.1 and 0.5 s: the 190th is 95 % of the way through that bucket
    assert figures.p95 == pytest.approx(0.48)
    assert snapshot().services["orders"].requests == 200


def test_lag_dead_letters_and_outbox_are_read_from_the_latest_scrape() -> None:
    taken = snapshot()
    assert taken.lag == {"reserve-stock": 7000, "confirm-order": 3}
    assert taken.dead_letters == {"reserve-stock": 2}
    assert taken.outbox == {"orders": (12, 4.5)}


def test_a_counter_that_went_down_was_restarted_and_counts_from_zero() -> None:
    grown = increase(parse(AFTER), parse(BEFORE))
    created = [s for s in grown if s.name == metrics.HTTP_REQUESTS and s.labels["status"] == "201"]
    assert created[0].value == 100


def test_quantile_interpolates_within_the_bucket_the_rank_falls_in() -> None:
    assert quantile(0.5, {0.1: 50, 0.2: 100, float("inf"): 100}) == pytest.approx(0.1)
    assert quantile(0.75, {0.1: 50, 0.2: 100, float("inf"): 100}) == pytest.approx(0.15)
    assert quantile(0.99, {0.1: 50, float("inf"): 100}) == pytest.approx(0.1)  # in +Inf: the highest bound
    assert quantile(0.95, {0.1: 0, float("inf"): 0}) is None


def quiet_baseline(p95: float = 0.04) -> Baseline:
    return Baseline({"create-order": p95}, 0.0, 1000, 1800)


def test_every_failed_criterion_is_named() -> None:
    failures = evaluate(snapshot({"orders": False, "catalog": False, "router": True}), quiet_baseline(),
                        Thresholds(), ["order 1 paid twice"])
    assert [f.criterion for f in failures] == [gate.ERROR_RATE, gate.LATENCY, gate.HEALTH, gate.LAG, gate.INTEGRITY]
    assert "5.00% of 200 requests" in failures[0].detail
    assert "reserve-stock 7000" in failures[3].detail
    assert "confirm-order" not in failures[3].detail


def test_a_steady_window_passes() -> None:
    steady = Snapshot(60, functions={"create-order": Figures(500, 2, 0.05)}, health=HEALTHY,
                      lag={"reserve-stock": 10})
    assert evaluate(steady, quiet_baseline(0.04), Thresholds(), []) == []


def test_one_failing_process_is_not_yet_a_rollback() -> None:
    one_down = Snapshot(60, health={**HEALTHY, "orders": False})
    assert evaluate(one_down, quiet_baseline(), Thresholds(), None) == []


def test_thresholds_are_what_the_flags_say() -> None:
    lagging = Snapshot(60, lag={"reserve-stock": 20})
    assert evaluate(lagging, quiet_baseline(), Thresholds(), None) == []
    assert [f.criterion for f in evaluate(lagging, quiet_baseline(), Thresholds(max_lag=5), None)] == [gate.LAG]


def test_latency_is_judged_against_twice_the_baseline_above_the_floor_on_enough_requests() -> None:
    def judged(p95: float, before: float, requests: float = 100) -> list[str]:
        window = Snapshot(60, functions={"create-order": Figures(requests, 0, p95)})
        return [f.criterion for f in evaluate(window, quiet_baseline(before), Thresholds(), None)]

    assert judged(0.5, 0.2) == [gate.LATENCY]
    assert judged(0.39, 0.2) == []
    assert judged(0.09, 0.004) == []  # under the floor
    assert judged(0.5, 0.2, requests=5) == []  # too few requests to tell


def test_the_baseline_file_round_trips(tmp_path: Path) -> None:
    recorded = Baseline.of(snapshot(), min_requests=20)
    recorded.write(tmp_path / "baseline.json")
    assert Baseline.read(tmp_path / "baseline.json") == recorded
    assert recorded.p95 == {"create-order": pytest.approx(0.48)}
    (tmp_path / "other.json").write_text('{"p95": 3}')
    with pytest.raises(ValueError, match="not a baseline"):
        Baseline.read(tmp_path / "other.json")


def test_the_report_names_the_failed_criteria_in_its_verdict() -> None:
    text = gate.report([gate.Failure(gate.LAG, "over 5000 messages: reserve-stock 7000")], integrity_checked=False)
    assert "FAIL consumer lag: over 5000 messages" in text
    assert "integrity: not checked" in text
    assert text.splitlines()[-1] == "roll back: consumer lag"


def test_delivery_outcomes_as_counted() -> None:
    assert delivery_outcome(Verdict.DONE, True) == metrics.DONE
    assert delivery_outcome(Verdict.REPLY, False) == metrics.DONE
    assert delivery_outcome(Verdict.RETRY, True) == metrics.RETRIED
    assert delivery_outcome(Verdict.RETRY, False) == metrics.DEAD_LETTERED
    assert delivery_outcome(Verdict.DEAD, True) == metrics.REJECTED
