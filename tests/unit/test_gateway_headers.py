"""What the gateway forwards: end-to-end headers unchanged, hop-by-hop ones never, the client recorded."""

from __future__ import annotations

import pytest

from fusion.local.gateway import answer_headers, forwarded_headers, is_internal


def test_the_callers_headers_go_through_and_the_connections_own_do_not() -> None:
    sent = [("Host", "shop.example"), ("Authorization", "Bearer abc"), ("Idempotency-Key", "k-1"),
            ("Connection", "keep-alive, X-Trace-Hop"), ("Keep-Alive", "timeout=5"), ("X-Trace-Hop", "1"),
            ("TE", "trailers"), ("Transfer-Encoding", "chunked"), ("Content-Length", "12"),
            ("Proxy-Authorization", "Basic x"), ("Upgrade", "h2c"), ("Accept", "application/json")]
    forwarded = forwarded_headers(sent, "10.0.0.7")
    assert forwarded == [("Host", "shop.example"), ("Authorization", "Bearer abc"), ("Idempotency-Key", "k-1"),
                         ("Accept", "application/json"), ("X-Forwarded-For", "10.0.0.7"),
                         ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "shop.example")]


def test_the_client_is_appended_to_the_proxies_before() -> None:
    forwarded = dict(forwarded_headers([("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")],
                                       "127.0.0.1"))
    assert forwarded["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert forwarded["X-Forwarded-Proto"] == "http"  # what this hop was spoken in


def test_the_answer_keeps_its_framing_and_repeated_headers() -> None:
    answered = [("Content-Type", "application/json"), ("Content-Length", "2"), ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"), ("Connection", "close"), ("Keep-Alive", "timeout=2")]
    assert answer_headers(answered) == [("Content-Type", "application/json"), ("Content-Length", "2"),
                                        ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]


@pytest.mark.parametrize(("path", "internal"), [
    ("/_functions/reserve-stock", True), ("/_functions", True), ("/metrics", True), ("/metrics/", True),
    ("/health", True), ("/healthz", False), ("/products", False), ("/shop/orders/1", False), ("/", False),
])
def test_internal_paths(path: str, internal: bool) -> None:
    assert is_internal(path) is internal
