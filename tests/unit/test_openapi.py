"""The OpenAPI document: derived from the registry, committed fresh, complete, and valid OpenAPI 3.1.

The declarations the document is built from (`@query(params=…)`, `@command(body=…)`) are checked
against the handlers' code, so a query parameter or body model used in code but not declared fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, create_model

from fusion.openapi import DOCUMENT_PATH, build_document, main, render
from fusion.registry import FunctionSpec, Route, load_all

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
        elif name == "Listing":  # a Listing pages with limit and offset
            reads.query |= {"limit", "offset"}
        elif name == "parse_body":
            reads.bodies.add(_lookup(call.args[1], namespace))
        callee = _lookup(call.func, namespace)
        callee = inspect.unwrap(callee) if callable(callee) else None
        if inspect.isfunction(callee) and callee.__module__.startswith("functions.") and callee not in seen:
            seen.add(callee)
            _scan(ast.parse(textwrap.dedent(inspect.getsource(callee))), callee.__globals__, reads, seen)
    reads.query.discard("")


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
    local_urls = [f"http://127.0.0.1:{port}" for port in range(3000, 3006)]
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
        assert ("404" in responses) is ("{" in route.path)
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


def test_the_scan_finds_query_reads_in_helpers() -> None:
    assert _reads_of(SPECS["list-products"]).query == {"q", "category", "minPrice", "maxPrice", "limit", "offset"}
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
    return FunctionSpec(name=name, target=name.replace("-", "_"), service="catalog", kind="http",
                        routes=(Route(method, path),), summary="Does it.\nIn detail.", extra=extra)


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
