"""One trace for one order: the HTTP request, the relay's publish of each event, and every handler's delivery,
exported over OTLP/HTTP by the platform's processes to a receiver the test runs."""

from __future__ import annotations

import secrets

from otlp_receiver import OtlpReceiver, ReceivedSpan
from platform_runner import RunningPlatform, eventually
from test_backbone import new_product, order_status

from fusion.waiting import wait_until

# label: (service.name, span name, kind) of the spans one order's trace must hold
SAGA = {
    "request": ("orders", "POST create-order", "server"),
    "publish created": ("relay", "publish order.created", "producer"),
    "reserve": ("inventory", "reserve-stock com.fusioncommerce.order.created", "consumer"),
    "publish reserved": ("relay", "publish inventory.reserved", "producer"),
    "confirm": ("orders", "confirm-order com.fusioncommerce.inventory.reserved", "consumer"),
}


def _one(spans: list[ReceivedSpan], service: str, name: str, kind: str) -> ReceivedSpan | None:
    return next((s for s in spans if s.service == service and s.name == name and s.kind == kind), None)


def test_one_trace_spans_the_request_the_relay_and_the_handlers(platform: RunningPlatform,
                                                                 otlp: OtlpReceiver) -> None:
    product = new_product(platform, inventory=5, price=8.0)
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    status, order = platform.post("orders", "/orders", {
        "customerId": "traced-customer", "currency": "USD", "items": [{"sku": product["sku"], "quantity": 1,
                                                                        "price": 8.0}]},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
    assert status == 201, order
    eventually(lambda: order_status(platform, order["id"]), lambda s: s == "shipped")

    def whole_saga() -> dict[str, ReceivedSpan] | None:
        spans = otlp.trace(trace_id)
        found = {label: span for label, wanted in SAGA.items() if (span := _one(spans, *wanted))}
        return found if len(found) == len(SAGA) else None

    try:
        found = wait_until(whole_saga, 30, 0.2, f"the saga's spans in trace {trace_id}")
    except TimeoutError:
        raise AssertionError(f"spans of the trace: {otlp.trace(trace_id)}; {len(otlp.spans)} spans in all") from None
    # each hop continues the one before: request → publish → handler → its event's publish → next handler
    assert found["request"].parent_id == caller_span
    assert found["publish created"].parent_id == found["request"].span_id
    assert found["reserve"].parent_id == found["publish created"].span_id
    assert found["publish reserved"].parent_id == found["reserve"].span_id
    assert found["confirm"].parent_id == found["publish reserved"].span_id
