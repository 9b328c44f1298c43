"""Bounded input, the pure parts: amounts checked before any arithmetic, text without control characters,
JSON nesting, query parameters, the body limit and odd paths."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import flask
import pytest
from pydantic import Field, ValidationError

from fusion.declare import find_route
from fusion.errors import Invalid
from fusion.money import MAX_DIGITS, MoneyError, bounded_decimal, to_minor
from fusion.registry import FunctionSpec, Route
from fusion.web import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    Amount,
    ApiError,
    Body,
    limit_body,
    query_choice,
    query_decimal,
    query_int,
    query_text,
    read_json_object,
    validation_error,
)

APP = flask.Flask(__name__)


@pytest.fixture
def within_a_second() -> Iterator[None]:
    """Refusals are checks, not computations: each is far under a second, against ~35 s of CPU unbounded."""
    started = time.perf_counter()
    yield
    assert time.perf_counter() - started < 1


# amounts


@pytest.mark.parametrize("amount", ["1e999990", "-1e999990", "1E+13", 10**13, "1e-999990", "0E+50", 1e308,
                                    "1" * 41, "0." + "0" * 40 + "1", "1" * 101, " " * 101 + "1"])
@pytest.mark.usefixtures("within_a_second")
def test_amounts_out_of_bounds_are_refused_before_any_arithmetic(amount: object) -> None:
    with pytest.raises(MoneyError, match=r"digits|decimal places|less than"):
        bounded_decimal(amount)
    with pytest.raises(MoneyError):
        to_minor(amount, "USD")


@pytest.mark.parametrize(("amount", "problem"), [("NaN", "finite"), ("-Infinity", "finite"), (float("inf"), "finite"),
                                                 (True, "number"), (None, "number"), ([1], "number"),
                                                 ("twelve", "number")])
def test_what_is_not_a_finite_number_is_refused(amount: object, problem: str) -> None:
    with pytest.raises(MoneyError, match=problem):
        bounded_decimal(amount)


@pytest.mark.parametrize(("amount", "value"), [("19.99", Decimal("19.99")), (19.99, Decimal("19.99")),
                                               ("9999999999999.99", Decimal("9999999999999.99")),
                                               ("-9999999999999", Decimal("-9999999999999")), (0, Decimal(0)),
                                               ("1" * MAX_DIGITS + "e-28", Decimal("1" * MAX_DIGITS + "e-28"))])
def test_amounts_within_bounds_are_kept_exactly(amount: object, value: Decimal) -> None:
    assert bounded_decimal(amount) == value


def test_an_extra_digit_beyond_the_context_precision_is_refused_by_the_currency_rule() -> None:
    # 35 significant digits: Decimal's 28-digit context would round this to 19.99.
    with pytest.raises(MoneyError, match="more than 2 decimal places, which USD does not allow"):
        to_minor("19.990000000000000000000000000000001", "USD")
    with pytest.raises(MoneyError, match="more than 0 decimal places"):
        to_minor("1500.0000000000000000000000000000001", "JPY")


def test_trailing_zeros_are_exact_and_the_largest_amounts_convert() -> None:
    assert to_minor("19.99000000000000000000000000000000000", "USD") == 1999
    assert to_minor("9999999999999.99", "USD") == 999_999_999_999_999
    assert to_minor("9999999999999.999", "KWD") == 9_999_999_999_999_999


class Priced(Body):
    price: Amount = Field(ge=0)
    share: Amount = Field(default=Decimal(1), gt=0, le=90, decimal_places=2)


@pytest.mark.parametrize(("body", "field", "problem"), [
    ({"price": "1e999990"}, "price", "must be less than 10000000000000"),
    ({"price": "-1"}, "price", "greater than or equal to 0"),
    ({"price": 1, "share": "1e999990"}, "share", "must be less than"),
    ({"price": 1, "share": "15.000000000000000000000000000000001"}, "share", "no more than 2 decimal places"),
])
@pytest.mark.usefixtures("within_a_second")
def test_the_amount_type_names_the_field(body: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Priced.model_validate(body)
    error = validation_error(refused.value)
    assert error.field == field and problem in error.message


def test_the_amount_type_keeps_the_json_schema_of_a_decimal() -> None:
    class Plain(Body):
        price: Decimal = Field(ge=0)

    assert Priced.model_json_schema()["properties"]["price"] == Plain.model_json_schema()["properties"]["price"]


# control characters


class Line(Body):
    sku: str = Field(min_length=1)
    tags: list[str] = []


class Note(Body):
    free_text = frozenset({"text"})

    title: str | None = None
    text: str | None = None
    lines: list[Line] = []


@pytest.mark.parametrize(("body", "field"), [
    ({"title": "a\x00b"}, "title"),
    ({"text": "a\x00b"}, "text"),
    ({"text": "bell\x07"}, "text"),
    ({"title": "two\nlines"}, "title"),
    ({"title": "tab\there"}, "title"),
    ({"title": "c1 \x8a"}, "title"),
    ({"title": "del \x7f"}, "title"),
    ({"lines": [{"sku": "ok"}, {"sku": "a\x00"}]}, "lines[1].sku"),
    ({"lines": [{"sku": "ok", "tags": ["fine", "n\x00"]}]}, "lines[0].tags"),
])
def test_control_characters_are_refused_in_every_text_field_naming_it(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Note.model_validate(body)
    error = validation_error(refused.value)
    assert error.field == field and error.message == f"{field}: must not contain control characters"


def test_free_text_may_hold_tabs_and_line_breaks() -> None:
    note = Note.model_validate({"title": "Plain title", "text": "line one\r\nline\ttwo", "lines": [{"sku": "É-1"}]})
    assert note.text == "line one\r\nline\ttwo" and note.lines[0].sku == "É-1"


# JSON bodies


def _json_body(raw: bytes | str) -> dict[str, Any]:
    with APP.test_request_context("/", method="POST", data=raw, content_type="application/json"):
        return read_json_object(flask.request)


@pytest.mark.parametrize("raw", ["[" * 1000 + "]" * 1000, '{"items":' + "[" * 1000 + "]" * 1000 + "}",
                                 '{"a":' + "[" * 100_000 + "]" * 100_000 + "}",
                                 '{"a":' + '{"b":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH + "}"])
def test_deeply_nested_bodies_are_refused(raw: str) -> None:
    with pytest.raises(Invalid) as refused:
        _json_body(raw)
    assert refused.value.field == "body" and refused.value.message == "body: nested too deeply"


def test_nesting_up_to_the_limit_is_read() -> None:
    nested = '{"a":' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert _json_body(nested) == json.loads(nested)


# the body limit


def _limit(data: bytes, **environ: Any) -> None:
    with APP.test_request_context("/", method="POST", data=data, environ_overrides=environ):
        limit_body(flask.request)


def test_a_body_over_the_limit_is_413_naming_the_body() -> None:
    _limit(b" " * MAX_BODY_BYTES)
    with pytest.raises(ApiError) as refused:
        _limit(b" " * (MAX_BODY_BYTES + 1))
    assert (refused.value.status, refused.value.code, refused.value.field) == (413, "payload_too_large", "body")


def test_a_chunked_body_over_the_limit_is_413() -> None:
    with pytest.raises(ApiError) as refused:
        _limit(b" " * (MAX_BODY_BYTES + 1), HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    assert refused.value.status == 413


# query parameters


def _query(query: str, read: Any) -> Any:
    with APP.test_request_context(f"/?{query}"):
        return read(flask.request)


@pytest.mark.parametrize(("query", "name"), [("limit=99999999999999999999", "limit"), (f"offset={2**63}", "offset"),
                                             ("limit=1" + "0" * 5000, "limit"), ("limit=%00", "limit")])
def test_page_numbers_out_of_range_are_400(query: str, name: str) -> None:
    with pytest.raises(Invalid) as refused:
        _query(query, lambda request: query_int(request, name, 0, low=0, high=1000))
    assert refused.value.field == name


@pytest.mark.parametrize("raw", ["1e999990", "-1", "NaN", "abc", "1" * 200])
@pytest.mark.usefixtures("within_a_second")
def test_price_filters_out_of_bounds_are_400(raw: str) -> None:
    with pytest.raises(Invalid) as refused:
        _query(f"maxPrice={raw}", lambda request: query_decimal(request, "maxPrice"))
    assert refused.value.field == "maxPrice"


@pytest.mark.parametrize(("query", "problem"), [("q=a%00b", "control characters"), ("q=a%0Ab", "control characters"),
                                                ("q=" + "x" * 201, "at most 200 characters")])
def test_text_parameters_refuse_control_characters_and_length(query: str, problem: str) -> None:
    with pytest.raises(Invalid, match=problem) as refused:
        _query(query, lambda request: query_text(request, "q", 200))
    assert refused.value.field == "q"


def test_text_parameters_are_trimmed_and_empty_means_absent() -> None:
    assert _query("q=%20shirt%20", lambda request: query_text(request, "q", 200)) == "shirt"
    assert _query("q=%20", lambda request: query_text(request, "q", 200)) is None
    assert _query("", lambda request: query_text(request, "q", 200)) is None


def test_a_choice_with_a_control_character_is_400() -> None:
    with pytest.raises(Invalid) as refused:
        _query("status=paid%00", lambda request: query_choice(request, "status", ("paid",)))
    assert refused.value.field == "status"


# paths


@pytest.mark.parametrize("path", ["/stock/a\x00b", "/stock/\n\x8a", "/stock/a\x01"])
def test_a_path_with_control_characters_matches_no_route(path: str) -> None:
    spec = FunctionSpec(name="get-stock", target="get_stock", service="inventory", kind="http",
                        routes=(Route("GET", "/stock/{sku}"),))
    with pytest.raises(ApiError) as refused:
        find_route([spec], "GET", path)
    assert refused.value.status == 404 and refused.value.code == "not_found"
    assert find_route([spec], "GET", "/stock/MUG-1")[1] == {"sku": "MUG-1"}
