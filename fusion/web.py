"""HTTP helpers shared by every HTTP function: JSON responses, clear 4xx errors, body and query parsing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from fusion.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    ProviderRefused,
    Refused,
    Unauthenticated,
    Unavailable,
)
from fusion.money import json_number

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """Every JSON request body: camelCase names (snake_case accepted too), extra fields ignored, text trimmed."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, alias_generator=to_camel,
                              populate_by_name=True)


class ApiError(Exception):
    """An answer other than success: status, a machine-readable code and a message naming the problem."""

    def __init__(self, status: int, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.field = field

    def response(self) -> flask.Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        # RFC 6750: a 401 says which scheme it wants.
        headers = {"WWW-Authenticate": f'Bearer error="{self.code}"'} if self.status == 401 else None
        return json_response(body, self.status, headers=headers)


_DEFAULT_CODES = {
    400: "validation_error",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
    422: "unprocessable",
    503: "unavailable",
}


# The one place a domain error becomes an HTTP status.
_STATUS_OF: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Refused: 422,
    ProviderRefused: 502,
    Unavailable: 503,
}


def http_error(error: DomainError) -> ApiError:
    status = next((code for kind, code in _STATUS_OF.items() if isinstance(error, kind)), 500)
    return ApiError(status, error.message, code=error.code, field=error.field)


def path_uuid(params: dict[str, str], name: str, what: str) -> uuid.UUID:
    """A UUID path parameter; anything else names no resource, so it is a 404 for `what`."""
    try:
        return uuid.UUID(params[name])
    except ValueError:
        raise NotFound(what, params[name]) from None


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return json_number(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(body: Any) -> str:
    return json.dumps(body, default=_default, separators=(",", ":"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(dumps(body), status=status, mimetype="application/json", headers=headers)


def read_json_object(request: flask.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise Invalid("body", "must be a JSON object")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise Invalid("body", f"is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("body", "must be a JSON object")
    return body


def _field_name(location: tuple[int | str, ...]) -> str:
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def validation_error(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    field = _field_name(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    return Invalid(field, _lower_first_word(message) or "is invalid")


def _lower_first_word(message: str) -> str:
    """"Input should be…" → "input should be…", but "UUID input…" stays as it is."""
    if len(message) > 1 and message[1].isupper():
        return message
    return message[:1].lower() + message[1:]


def parse_body(request: flask.Request, model: type[M]) -> M:
    body = read_json_object(request)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


def query_int(request: flask.Request, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(name, f"must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise Invalid(name, f"must be {bounds}, got {value}")
    return value


def query_decimal(request: flask.Request, name: str) -> Decimal | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise Invalid(name, f"must be a number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise Invalid(name, f"must be a non-negative number, got {raw!r}")
    return value


def query_choice(request: flask.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise Invalid(name, f"must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
