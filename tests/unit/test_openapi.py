"""The OpenAPI document: derived from the registry, committed fresh, complete, and valid OpenAPI 3.1.

The declarations the document is built from (`@query(params=…)`, `@command(body=…)`, `answers=…`) are
checked against the handlers' code, so a query parameter, body model or answer model used in code but
not declared fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel, create_model

from functions.orders.api import OrderLineView, OrderView, StatusChangeView
from fusion.openapi import DOCUMENT_PATH, build_document, main, render
from fusion.registry import FunctionSpec, Route, load_all
from fusion.web import View

SPECS = load_all()
HTTP = sorted((spec for spec in SPECS.values() if spec.kind == "http"), key=lambda spec: spec.name)
COMMANDS = [spec for spec in HTTP if "body" in spec.extra]
QUERIES = [spec for spec in HTTP if "params" in spec.extra]
DOCUMENT = build_document(SPECS.values())
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][route.path][route.method.lower()]
    return operation


def _resolve(node: Any) -> Any:
    """Follow a local `$ref` (the test fails with a KeyError when it points nowhere)."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


# --- what the handlers' code reads -------------------------------------------------------------


@dataclass
class Reads:
    query: set[str] = field(default_factory=set)
    bodies: set[Any] = field(default_factory=set)
    views: set[Any] = field(default_factory=set)  # the answer models it builds
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)  # what query_text / query_choice accept
    unrecognised: list[str] = field(default_factory=list)  # reads the scan cannot name: fix the code or the scan


def _handler(spec: FunctionSpec) -> tuple[ast.FunctionDef, dict[str, Any]]:
    """The declared function's definition and its module's namespace."""
    package = importlib.import_module(f"functions.{spec.service_spec.package}")
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, ast.FunctionDef) and node.name == spec.target and _declares(node, spec.name):
                return node, vars(module)
    raise AssertionError(f"the declaration of {spec.name} was not found under functions/")


def _declares(node: ast.FunctionDef, name: str) -> bool:
    return any(isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Constant) and d.args[0].value == name
               for d in node.decorator_list)


def _lookup(expr: ast.expr, namespace: dict[str, Any]) -> Any:
    if isinstance(expr, ast.Name):
        return namespace.get(expr.id)
    if isinstance(expr, ast.Attribute):
        return getattr(_lookup(expr.value, namespace), expr.attr, None)
    return None


def _literal(call: ast.Call, position: int, reads: Reads) -> str | None:
    arg = call.args[position] if len(call.args) > position else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    reads.unrecognised.append(ast.unparse(call))
    return None


def _callee_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _is_args_get(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "get" and _is_args(func.value)


def _is_args(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "args" and isinstance(node.value, ast.Name)


def _scan(tree: ast.AST, namespace: dict[str, Any], reads: Reads, seen: set[Any]) -> None:
    """Query parameters and body models read by `tree` and every project function it calls."""
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    args_reads = [call for call in calls if _is_args_get(call)]
    if sum(_is_args(node) for node in ast.walk(tree)) != len(args_reads):
        reads.unrecognised.append("request.args read other than by request.args.get(...)")
    for call in args_reads:
        reads.query.add(_literal(call, 0, reads) or "")
    for call in calls:
        name = _callee_name(call)
        if name.startswith("query_"):  # fusion.web's query_int, query_decimal, query_choice
            reads.query.add(_literal(call, 1, reads) or "")
            _read_limit(call, name, namespace, reads)
        elif name == "Listing":  # a Listing pages with limit and offset
            reads.query |= {"limit", "offset"}
        elif name == "parse_body":
            reads.bodies.add(_lookup(call.args[1], namespace))
        view = _lookup(call.func.value if name == "model_validate" else call.func, namespace)  # type: ignore[attr-defined]
        if isinstance(view, type) and issubclass(view, View):
            reads.views.add(view)
        callee = _lookup(call.func, namespace)
        callee = inspect.unwrap(callee) if callable(callee) else None
        if inspect.isfunction(callee) and callee.__module__.startswith("functions.") and callee not in seen:
            seen.add(callee)
            _scan(ast.parse(textwrap.dedent(inspect.getsource(callee))), callee.__globals__, reads, seen)
    reads.query.discard("")


def _read_limit(call: ast.Call, name: str, namespace: dict[str, Any], reads: Reads) -> None:
    """The bound a text or choice read gives its parameter: the documented schema must say the same."""
    key = {"query_text": "maxLength", "query_choice": "enum"}.get(name)
    if key is None or len(call.args) < 3 or not isinstance(call.args[1], ast.Constant):
        return
    bound = call.args[2]
    value = bound.value if isinstance(bound, ast.Constant) else _lookup(bound, namespace)
    reads.limits[call.args[1].value] = {key: list(value) if key == "enum" else value}


def _reads_of(spec: FunctionSpec) -> Reads:
    node, namespace = _handler(spec)
    reads = Reads()
    _scan(node, namespace, reads, set())
    return reads


# --- the committed document ----------------------------------------------------------------------


def test_the_committed_document_is_a_fresh_build() -> None:
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == render(DOCUMENT), (
        "docs/openapi.json is out of date: run `python -m fusion.openapi` and commit it"
    )


def test_the_command_writes_and_checks_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "openapi.json"
    assert main(["--check", "--out", str(out)]) == 1  # missing
    assert main(["--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text == render(DOCUMENT) and text.endswith("}\n") and text.startswith('{\n  "components"')
    assert main(["--check", "--out", str(out)]) == 0
    out.write_text(text.replace("create-order", "place-order"), encoding="utf-8")
    assert main(["--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err


# --- completeness --------------------------------------------------------------------------------


def test_every_route_of_the_registry_is_an_operation_and_nothing_else_is() -> None:
    operations = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item if method in METHODS}
    routes = {(route.path, route.method.lower()) for spec in HTTP for route in spec.routes}
    assert operations == routes | {("/health", "get")}
    assert len(HTTP) > 20


@pytest.mark.parametrize("spec", HTTP, ids=lambda spec: spec.name)
def test_each_operation_is_named_tagged_and_served_by_its_function(spec: FunctionSpec) -> None:
    (route,) = spec.routes
    operation = _operation(route)
    assert operation["operationId"] == spec.name
    assert operation["tags"] == [spec.service]
    assert operation["servers"] == [{"url": f"http://127.0.0.1:{spec.service_spec.port}",
                                     "description": f"{spec.service} on the local platform"}]
    assert operation["summary"] == spec.summary.splitlines()[0]


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for item in DOCUMENT["paths"].values() for method, op in item.items() if method in METHODS]
    assert len(ids) == len(set(ids))


def test_health_is_documented_once_for_every_service() -> None:
    health = DOCUMENT["paths"]["/health"]
    assert list(health) == ["get"] and health["get"]["tags"] == ["platform"]
    assert set(health["get"]["responses"]) == {"200", "503"}
    local_urls = [f"http://127.0.0.1:{port}" for port in range(3000, 3008)]
    assert [server["url"] for server in DOCUMENT["servers"]] == local_urls
    assert "Knative Service" in DOCUMENT["info"]["description"]


@pytest.mark.parametrize("spec", HTTP, ids=lambda spec: spec.name)
def test_every_path_placeholder_is_a_required_path_parameter(spec: FunctionSpec) -> None:
    for route in spec.routes:
        parameters = [_resolve(p) for p in _operation(route).get("parameters", [])]
        in_path = {p["name"] for p in parameters if p["in"] == "path" and p["required"] is True}
        assert in_path == set(re.findall(r"\{(\w+)\}", route.path))


@pytest.mark.parametrize("spec", HTTP, ids=lambda spec: spec.name)
def test_errors_and_headers_follow_what_the_function_can_answer(spec: FunctionSpec) -> None:
    for route in spec.routes:
        operation = _operation(route)
        responses = operation["responses"]
        parameters = [_resolve(p) for p in operation.get("parameters", [])]
        is_command = spec in COMMANDS
        assert ("Idempotency-Key" in {p["name"] for p in parameters if p["in"] == "header"}) is is_command
        assert ("400" in responses) is (is_command or bool(spec.extra.get("params")))
        assert ("404" in responses) is ("{" in route.path or is_command)
        assert {"409", "422"} <= set(responses) if is_command else not {"409", "422"} & set(responses)
        for status in ("400", "404", "409", "422"):
            if status in responses:
                schema = _resolve(responses[status])["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}
    error = DOCUMENT["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"error", "message", "field"} and error["required"] == ["error", "message"]


# --- declarations against code -------------------------------------------------------------------


@pytest.mark.parametrize("spec", HTTP, ids=lambda spec: spec.name)
def test_declared_query_parameters_and_body_are_what_the_code_reads(spec: FunctionSpec) -> None:
    reads = _reads_of(spec)
    assert not reads.unrecognised
    assert reads.query == set(spec.extra.get("params", ())), "declare them with @query(params=[...])"
    body = spec.extra.get("body")
    assert reads.bodies == ({body} if body else set()), "declare it with @command(body=Model)"


def _answer_models(spec: FunctionSpec) -> set[Any]:
    """The models of the JSON answers `answers=` declares (a list answers its items' model)."""
    answers = spec.extra["answers"].values()
    return {get_args(answer)[0] if get_args(answer) else answer for answer in answers if not isinstance(answer, str)}


@pytest.mark.parametrize("spec", HTTP, ids=lambda spec: spec.name)
def test_declared_answers_are_what_the_code_builds(spec: FunctionSpec) -> None:
    assert spec.extra.get("answers"), "declare what it answers with answers=Model, list[Model] or {status: Model}"
    assert _answer_models(spec) <= _reads_of(spec).views, "answer with the declared model: answer(Model(...))"


@pytest.mark.parametrize("spec", QUERIES, ids=lambda spec: spec.name)
def test_documented_query_bounds_are_what_the_code_accepts(spec: FunctionSpec) -> None:
    declared = {str(param): getattr(param, "schema", {}) for param in spec.extra["params"]}
    for name, limit in _reads_of(spec).limits.items():
        ((key, value),) = limit.items()
        assert declared[name].get(key) == value, f"declare {name} with text_param / choice_param as the code reads it"


def test_the_scan_finds_query_reads_in_helpers() -> None:
    assert _reads_of(SPECS["list-products"]).query == {"q", "category", "minPrice", "maxPrice", "sku", "id", "limit",
                                                       "offset"}
    cancellation = SPECS["cancel-order"].extra["body"]
    assert _reads_of(SPECS["cancel-order"]).bodies == {cancellation}  # parsed in a helper


@pytest.mark.parametrize("spec", QUERIES, ids=lambda spec: spec.name)
def test_query_parameters_are_documented_as_declared(spec: FunctionSpec) -> None:
    parameters = [_resolve(p) for p in _operation(spec.routes[0]).get("parameters", [])]
    assert [p["name"] for p in parameters if p["in"] == "query"] == list(spec.extra["params"])
    assert all(p["required"] is False for p in parameters if p["in"] == "query")


@pytest.mark.parametrize("spec", [spec for spec in COMMANDS if spec.extra["body"]], ids=lambda spec: spec.name)
def test_a_command_with_a_body_documents_its_model(spec: FunctionSpec) -> None:
    model: type[BaseModel] = spec.extra["body"]
    aliases = {name: info.alias or name for name, info in model.model_fields.items()}
    required = {aliases[name] for name, info in model.model_fields.items() if info.is_required()}
    request_body = _operation(spec.routes[0])["requestBody"]
    schema = _resolve(request_body["content"]["application/json"]["schema"])
    assert set(schema.get("required", [])) == required
    assert set(schema["properties"]) == set(aliases.values())
    assert request_body["required"] is bool(required)


def test_bodies_are_declared_where_expected() -> None:
    with_body = {spec.name for spec in COMMANDS if spec.extra["body"]}
    assert {"create-order", "create-product", "create-campaign", "join-campaign", "set-stock"} <= with_body
    assert _operation(SPECS["cancel-order"].routes[0])["requestBody"]["required"] is False  # the reason is optional
    assert "requestBody" not in _operation(SPECS["refund-payment"].routes[0])
    items = DOCUMENT["components"]["schemas"]["NewOrder"]["properties"]["items"]["items"]
    assert items == {"$ref": "#/components/schemas/NewOrderItem"}


@pytest.mark.parametrize("spec", HTTP, ids=lambda spec: spec.name)
def test_each_success_answer_has_its_exact_status_and_schema(spec: FunctionSpec) -> None:
    responses = _operation(spec.routes[0])["responses"]
    successes = {status: response for status, response in responses.items() if status.startswith("2")}
    assert set(successes) == {str(status) for status in spec.extra["answers"]}
    for response in successes.values():
        ((media, content),) = response["content"].items()
        if media == "application/json":
            schema = content["schema"]
            component = _resolve(schema.get("items", schema))
            assert component["type"] == "object" and component["additionalProperties"] is False


def test_creates_answer_201_and_everything_else_200() -> None:
    statuses = {spec.name: sorted(spec.extra["answers"]) for spec in HTTP}
    creates = {"create-product", "create-order", "create-campaign", "create-payment"}
    assert {name: statuses[name] for name in creates} == {name: [201] for name in creates}
    assert statuses["create-shipment"] == [200, 201]  # 200: the order already has its shipment
    assert all(codes == [200] for name, codes in statuses.items() if name not in creates | {"create-shipment"})
    label = _operation(SPECS["get-shipment-label"].routes[0])["responses"]["200"]["content"]
    assert list(label) == ["application/pdf"]
    orders = _operation(SPECS["list-orders"].routes[0])["responses"]["200"]["content"]["application/json"]["schema"]
    assert orders == {"type": "array", "items": {"$ref": "#/components/schemas/OrderView"}}


def test_answers_write_amounts_as_numbers_and_moments_as_utc_date_times() -> None:
    schema = _resolve({"$ref": "#/components/schemas/OrderView"})
    assert schema["properties"]["total"]["type"] == "number"
    assert schema["properties"]["createdAt"] == {"type": "string", "format": "date-time", "title": "Createdat"}
    at = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    order = OrderView(
        id=uuid.uuid4(), customer_id="alice", items=[OrderLineView(sku="TEE", quantity=2, price=Decimal("19.99"))],
        total=Decimal("40.00"), currency="USD", status="created", status_reason=None, campaign_id=None,
        created_at=at, updated_at=at.astimezone(UTC),
        history=[StatusChangeView(status="created", reason=None, at=at, late=False)],
    ).to_json()
    assert order["total"] == 40 and isinstance(order["total"], int) and order["items"][0]["price"] == 19.99
    assert order["createdAt"] == order["updatedAt"] == "2030-01-02T03:04:05Z"
    Draft202012Validator({**DOCUMENT, "$ref": "#/components/schemas/OrderView"}).validate(order)


# --- structure -----------------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.") and {"title", "version"} <= set(DOCUMENT["info"])
    validate(DOCUMENT)


def test_every_ref_resolves_inside_the_document() -> None:
    refs = [node["$ref"] for node in _walk(DOCUMENT) if isinstance(node, dict) and "$ref" in node]
    assert refs and all(ref.startswith("#/") for ref in refs)
    for ref in refs:
        _resolve({"$ref": ref})


def test_every_response_has_a_description() -> None:
    for item in DOCUMENT["paths"].values():
        for method, operation in item.items():
            if method in METHODS:
                assert operation["responses"]
                assert all(_resolve(response)["description"] for response in operation["responses"].values())


# --- the builder's own rules ---------------------------------------------------------------------


def _http_spec(name: str, route: str, **extra: Any) -> FunctionSpec:
    method, path = route.split(" ")
    extra.setdefault("answers", {200: "text/plain"})
    return FunctionSpec(name=name, target=name.replace("-", "_"), service="catalog", kind="http",
                        routes=(Route(method, path),), summary="Does it.\nIn detail.", extra=extra)


def test_an_http_function_must_say_what_it_answers() -> None:
    with pytest.raises(ValueError, match="declares no answers="):
        build_document([_http_spec("get-thing", "GET /things", params=(), answers={})])
    with pytest.raises(ValueError, match="give a model"):
        build_document([_http_spec("get-thing", "GET /things", params=(), answers={200: dict[str, int]})])


def test_a_route_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        build_document([_http_spec("get-thing", "GET /things"), _http_spec("list-things", "GET /things", params=())])
    with pytest.raises(ValueError, match="declared twice"):
        build_document([_http_spec("own-health", "GET /health", params=())])


def test_two_different_models_of_one_name_are_refused() -> None:
    first = create_model("Body", sku=(str, ...))
    second = create_model("Body", quantity=(int, ...))
    with pytest.raises(ValueError, match="named Body"):
        build_document([_http_spec("make-a", "POST /a", body=first), _http_spec("make-b", "POST /b", body=second)])


def test_a_multi_line_summary_becomes_summary_and_description() -> None:
    operation = build_document([_http_spec("get-thing", "GET /things/{id}", params=())])["paths"]["/things/{id}"]["get"]
    assert operation["summary"] == "Does it." and operation["description"] == "Does it.\nIn detail."
