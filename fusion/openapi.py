"""The OpenAPI 3.1 document of the HTTP API, derived from the function registry.

`python -m fusion.openapi` writes docs/openapi.json; `--check` fails when that file differs from a
fresh build, so the committed document can never drift from the declarations.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from fusion.listing import MAX_OFFSET, MAX_PAGE_SIZE
from fusion.registry import FunctionSpec, Route, Service, services
from fusion.web import Param, count_param, text_param

if TYPE_CHECKING:
    from fusion.declare import Answer

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
DOCUMENT_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
SCHEMA_REF = "#/components/schemas/{model}"
PATH_PARAMETER = re.compile(r"\{(\w+)\}")
PLATFORM_TAG = "platform"

INFO_DESCRIPTION = (
    "The storefront and admin HTTP API of FusionCommerce, generated from the function registry "
    "(every function is declared once, next to its code).\n\n"
    "On the local platform each service serves its functions on its own port: the servers below, "
    "and each operation names the one that serves it. In the cluster each function is its own "
    "Knative Service, named as the operation's operationId.\n\n"
    "Every command accepts an `Idempotency-Key` header: a retried request with the same key gets the "
    "first response again and changes nothing; keys belong to the caller. Errors are JSON objects "
    "`{error, message, field}`; extra fields in a request body are ignored.\n\n"
    "Callers identify themselves with a bearer OIDC JWT (`Authorization: Bearer …`): its `sub` is the "
    "customer id, and staff tokens carry scopes, one per area. Each operation says who may call it "
    "(`x-access`). Another customer's resource answers 404, a missing right 403, a bad token 401."
)
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "An OIDC access token of the configured issuer (locally: `fusion token`)."},
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code, e.g. validation_error, not_found, "
                  "conflict, idempotency_key_reused."},
        "message": {"type": "string", "description": "What is wrong, naming the field when there is one."},
        "field": {"type": "string", "description": "The request field, query parameter or header at fault."},
    },
}
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "service", "timestamp"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "service": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the command safe to retry: the same key with the same request returns the first "
                   "response and changes nothing; the same key with a different request answers 422.",
    "schema": text_param("Idempotency-Key", 255).schema,
}
# status -> (component name, description); each answers an `Error` body.
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Invalid input; the message and `field` name what is wrong."),
    401: ("Unauthenticated", "No bearer token, or one that is malformed, expired, not yet valid, from another "
                             "issuer or audience, or wrongly signed."),
    403: ("Forbidden", "The token is valid but does not grant this (a customer on a staff function, or staff "
                       "without the needed scope)."),
    404: ("NotFound", "No such resource (named by the path, or by the body of a command)."),
    409: ("Conflict", "The resource's state does not allow this."),
    413: ("PayloadTooLarge", "The request body is over the limit (1 MiB)."),
    422: ("Unprocessable", "Well-formed but refused, e.g. the Idempotency-Key was already used with a "
                           "different request, or an order's price differs from the catalog's."),
    503: ("Unavailable", "The database, or a service this one checks with (the catalog, for a product not heard "
                         "of yet), is unreachable; try again, after `Retry-After` seconds when it says."),
}
# The paging parameters every `Listing` reads (fusion/listing.py); a `Param` carries its own schema, and any
# other query parameter is a string.
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": count_param("limit", 1, MAX_PAGE_SIZE).schema,
    "offset": {**count_param("offset", 0, MAX_OFFSET).schema, "default": 0},
}


def build_document(specs: Iterable[FunctionSpec]) -> dict[str, Any]:
    """The OpenAPI document of every HTTP function in `specs`, plus `GET /health`."""
    http = sorted((spec for spec in specs if spec.kind == "http"), key=lambda spec: spec.name)
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, "Health": HEALTH_SCHEMA}
    paths: dict[str, dict[str, Any]] = {"/health": {"get": _health_operation()}}
    for spec in http:
        for index, route in enumerate(spec.routes):
            item = paths.setdefault(route.path, {})
            method = route.method.lower()
            if method in item:
                raise ValueError(f"{route} is declared twice (the second time by {spec.name})")
            item[method] = _operation(spec, route, _operation_id(spec, index), schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "FusionCommerce API", "version": API_VERSION, "description": INFO_DESCRIPTION},
        "servers": [_server(service) for service in services().values()],
        "tags": _tags(http),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {name: _error_response(text) for name, text in ERROR_RESPONSES.values()},
            "parameters": {"IdempotencyKey": IDEMPOTENCY_KEY},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _operation_id(spec: FunctionSpec, index: int) -> str:
    """The function's name; a function with several routes numbers the later ones (ids must be unique)."""
    return spec.name if index == 0 else f"{spec.name}-{index + 1}"


def _server(service: Service) -> dict[str, str]:
    return {"url": f"http://127.0.0.1:{service.port}", "description": f"{service.name} on the local platform"}


def _tags(http: list[FunctionSpec]) -> list[dict[str, str]]:
    with_http = {spec.service for spec in http}
    tags = [{"name": PLATFORM_TAG, "description": "Answered by every service."}]
    tags += [{"name": name, "description": f"The {name} service."} for name in services() if name in with_http]
    return tags


def _health_operation() -> dict[str, Any]:
    health = {"application/json": {"schema": {"$ref": SCHEMA_REF.format(model="Health")}}}
    return {
        "operationId": "health",
        "summary": "Liveness and database reachability of the service that answers.",
        "tags": [PLATFORM_TAG],
        "responses": {
            "200": {"description": "The service and its database are up.", "content": health},
            "503": {"description": "The database is unreachable.", "content": health},
        },
    }


def _operation(spec: FunctionSpec, route: Route, operation_id: str, schemas: dict[str, Any]) -> dict[str, Any]:
    is_command = _is_command(spec)
    body: type[BaseModel] | None = spec.extra.get("body")
    query: tuple[str, ...] = tuple(spec.extra.get("params", ()))
    path_names = PATH_PARAMETER.findall(route.path)
    operation: dict[str, Any] = {"operationId": operation_id, "tags": [spec.service],
                                 "servers": [_server(spec.service_spec)]}
    operation.update(_texts(spec.summary))
    parameters = [_path_parameter(name) for name in path_names] + [_query_parameter(name) for name in query]
    if is_command:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = _request_body(body, schemas)
    # A command's Idempotency-Key is validated too (400), so every command can answer 400.
    errors = {400} if body is not None or query or is_command else set()
    # A command's body may name what does not exist (a payment's order, a parcel's tracking number).
    errors |= {404} if path_names or is_command else set()
    errors |= {409, 413, 422} if is_command else set()
    errors |= _declare_access(spec, operation)
    operation["responses"] = {**_successes(spec, schemas), **_errors(errors | {503})}
    return operation


def _declare_access(spec: FunctionSpec, operation: dict[str, Any]) -> set[int]:
    """The operation's security requirement; returns the statuses the access check can answer."""
    access = spec.access
    if access is None:
        return set()
    operation["x-access"] = access.describe()
    if access.signed:
        operation["security"] = []
        return set()
    if access.public:  # no token needed; a token that is sent is still checked
        operation["security"] = [{}, {"bearer": []}]
        return {401}
    operation["security"] = [{"bearer": []}]
    return {401, 403}


def _is_command(spec: FunctionSpec) -> bool:
    """`@command` always records its body model (None when it reads no body); `@query` never does."""
    return "body" in spec.extra


def _texts(summary: str) -> dict[str, str]:
    """The docstring's first line as the summary; the whole of it as the description when there is more."""
    text = summary.strip()
    if not text:
        return {}
    first = text.splitlines()[0].strip()
    return {"summary": first} if first == text else {"summary": first, "description": text}


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query_parameter(name: str) -> dict[str, Any]:
    schema = name.schema if isinstance(name, Param) else QUERY_SCHEMAS.get(name, {"type": "string"})
    return {"name": str(name), "in": "query", "required": False, "schema": _or_empty(schema)}


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """Every reader takes an empty query parameter for a missing one, so the empty text is a value too."""
    if schema.get("type") == "string" and not {"enum", "format"} & set(schema):
        return schema
    return {"anyOf": [schema, {"type": "string", "maxLength": 0, "description": "Empty: as if left out."}]}


def _request_body(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = _component(model, "validation", schemas)
    # A model that needs no field is a body the function lets the client leave out.
    return {
        "required": bool(schema.get("required")),
        "content": {"application/json": {"schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}},
    }


def _component(model: type[BaseModel], mode: Literal["validation", "serialization"],
               schemas: dict[str, Any]) -> dict[str, Any]:
    """Add the model's schema (as it is read for a request, written for an answer) and its parts to `schemas`."""
    schema = model.model_json_schema(by_alias=True, ref_template=SCHEMA_REF, mode=mode)
    for name, definition in schema.pop("$defs", {}).items():
        _add_schema(schemas, name, definition)
    _add_schema(schemas, model.__name__, schema)
    return schema


def _add_schema(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if name in schemas and schemas[name] != schema:
        raise ValueError(f"two different schemas are named {name}: rename one of the models")
    schemas[name] = schema


def _successes(spec: FunctionSpec, schemas: dict[str, Any]) -> dict[str, Any]:
    """The declared success answers (`answers=`), each with its exact status and the schema of its body."""
    answers: Mapping[int, Answer] | None = spec.extra.get("answers")
    if not answers:
        raise ValueError(f"{spec.name} declares no answers=: say what it answers on success")
    return {str(status): _success(status, answers[status], schemas) for status in sorted(answers)}


def _success(status: int, answer: Answer, schemas: dict[str, Any]) -> dict[str, Any]:
    phrase = f"{HTTPStatus(status).phrase}."
    if isinstance(answer, str):  # a document, not JSON
        return {"description": phrase, "content": {answer: {"schema": {"type": "string", "format": "binary"}}}}
    many = get_origin(answer) is list
    model = get_args(answer)[0] if many else answer
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(f"answers= names {answer!r}: give a model, a list of one, or a media type")
    _component(model, "serialization", schemas)
    ref = {"$ref": SCHEMA_REF.format(model=model.__name__)}
    what = (model.__doc__ or model.__name__).strip().splitlines()[0]
    return {
        "description": f"{phrase} A list, each: {what}" if many else f"{phrase} {what}",
        "content": {"application/json": {"schema": {"type": "array", "items": ref} if many else ref}},
    }


def _errors(statuses: set[int]) -> dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/{ERROR_RESPONSES[code][0]}"} for code in sorted(statuses)}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": SCHEMA_REF.format(model="Error")}}}}


def render(document: dict[str, Any]) -> str:
    """The document as committed: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def current() -> str:
    """The rendered document of the whole registry."""
    from fusion.registry import load_all

    return render(build_document(load_all().values()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fusion.openapi", description=__doc__)
    parser.add_argument("--out", type=Path, default=DOCUMENT_PATH, help="the document's file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="fail when the file differs from a fresh build")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out: Path = args.out
    text = current()
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date: run `python -m fusion.openapi` and commit the result", file=sys.stderr)
            return 1
        print(f"{out} matches the function registry")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
