"""HTTP helpers shared by every HTTP function: JSON responses, clear 4xx errors, body and query parsing."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, NoReturn, TypeVar

import flask
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
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
from fusion.money import CURRENCIES, MAX_AMOUNT, MoneyError, bounded_decimal, json_number

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any real order or event, far below a memory problem
MAX_DEPTH = 32  # JSON nesting; the deepest real body is three levels
# Control characters (C0, DEL, C1): PostgreSQL refuses NUL, and none belongs in a name or an id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_FREE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tabs, line breaks allowed
NO_CONTROL_CHARACTERS = "must not contain control characters"


def _holds_control(value: object, pattern: re.Pattern[str]) -> bool:
    """Whether `value`, or any text in the lists and mappings it holds, has a character `pattern` refuses."""
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_control(item, pattern) for item in value)
    if isinstance(value, dict):
        return any(_holds_control(key, pattern) or _holds_control(item, pattern) for key, item in value.items())
    return False  # nested bodies check their own fields


def is_printable(text: str) -> bool:
    """Text without control characters: what an id, a name or a query may be."""
    return _CONTROL.search(text) is None


def _text_pattern(control: re.Pattern[str], required: bool) -> str:
    """The JSON schema pattern of a text without `control` characters; a `required` one is not blank once trimmed."""
    allowed = f"[^{control.pattern[1:-1]}]"
    visible = f"[^\\s{control.pattern[1:-1]}]"
    return f"^{allowed}*{visible}{allowed}*$" if required else f"^{allowed}*$"


def _document_body(schema: dict[str, Any], model: type[Any]) -> None:
    """Say in a body's JSON schema what its validators hold: printable text, amounts as numbers."""
    free_text: frozenset[str] = getattr(model, "free_text", frozenset())
    for name, field in model.model_fields.items():
        prop = schema.get("properties", {}).get(field.alias or name)
        if prop is None:
            continue
        control = _CONTROL_IN_FREE_TEXT if name in free_text else _CONTROL
        for branch in prop.get("anyOf", [prop]):
            texts = [branch.get("items", {})] if branch.get("type") == "array" else [branch]  # lists of text too
            for text in texts:
                if text.get("type") == "string" and not {"enum", "format"} & set(text):
                    text["pattern"] = _text_pattern(control, text.get("minLength", 0) > 0)
        if field.annotation is Decimal:  # documented as the JSON number it should be; text is accepted too
            prop.update(next(branch for branch in prop.pop("anyOf") if branch.get("type") == "number"))


class Body(BaseModel):
    """Every JSON request body: camelCase names (snake_case accepted too), extra fields ignored, text trimmed,
    no control characters in any text (tabs and line breaks only in the fields named in `free_text`)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, alias_generator=to_camel,
                              populate_by_name=True, json_schema_extra=_document_body)
    free_text: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _printable(cls, value: Any, info: ValidationInfo) -> Any:
        pattern = _CONTROL_IN_FREE_TEXT if info.field_name in cls.free_text else _CONTROL
        if _holds_control(value, pattern):
            raise ValueError(NO_CONTROL_CHARACTERS)
        return value


# A decimal in a body, bounded (digits, exponent, size) before pydantic or any flow computes with it.
Amount = Annotated[Decimal, BeforeValidator(bounded_decimal)]


# A currency in a body, documented as the ISO 4217 codes it must be one of (any case is accepted).
CurrencyCode = Annotated[str, WithJsonSchema({"type": "string", "enum": list(CURRENCIES)})]


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A count in a body: a JSON integer, which JSON Schema says 3.0 is too; never text or a boolean.
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole)]


class ApiError(Exception):
    """An answer other than success: status, a machine-readable code and a message naming the problem."""

    def __init__(self, status: int, message: str, *, code: str | None = None, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.field = field
        self.headers = dict(headers or {})

    def response(self) -> flask.Response:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        headers = dict(self.headers)
        if self.status == 401:  # RFC 6750: a 401 says which scheme it wants
            headers["WWW-Authenticate"] = f'Bearer error="{self.code}"'
        return json_response(body, self.status, headers=headers or None)


_DEFAULT_CODES = {
    400: "validation_error",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
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
    # RFC 9110: a 503 may say when to try again; clients and proxies back off that long.
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable) else None
    return ApiError(status, error.message, code=error.code, field=error.field, headers=headers)


def path_uuid(params: dict[str, str], name: str, what: str) -> uuid.UUID:
    """A UUID path parameter; anything else names no resource, so it is a 404 for `what`."""
    try:
        return uuid.UUID(params[name])
    except ValueError:
        raise NotFound(what, params[name]) from None


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, Decimal):
        return json_number(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(body: Any) -> str:
    return json.dumps(body, default=_default, separators=(",", ":"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(dumps(body), status=status, mimetype="application/json", headers=headers)


class View(BaseModel):
    """Every JSON answer: camelCase names and nothing but the declared fields, so its schema is the answer's.

    A field with a default is left out unless it is given: what only some callers are shown."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_unset=True)


# In an answer, an amount is a JSON number (whole amounts as integers) and a moment is ISO 8601 in UTC with Z.
Number = Annotated[Decimal, PlainSerializer(json_number, return_type=Any), WithJsonSchema({"type": "number"})]
Instant = Annotated[datetime, PlainSerializer(lambda moment: _utc_text(moment), return_type=str),
                    WithJsonSchema({"type": "string", "format": "date-time"})]


def one_of(names: Iterable[str]) -> WithJsonSchema:
    """An answer's text field that is always one of `names`, a status: `Annotated[str, one_of(STATUSES)]`."""
    return WithJsonSchema({"type": "string", "enum": list(names)})


def answer(view: View | Sequence[View], status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    """The JSON response of one view, or of a list of them."""
    body = view.to_json() if isinstance(view, View) else [item.to_json() for item in view]
    return json_response(body, status, headers)


def limit_body(request: flask.Request) -> None:
    """413 for a body over MAX_BODY_BYTES: refused by its Content-Length before any of it is read, and a
    chunked one read no further than the limit. The body read is kept for every later reader."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        _refuse_body(request)
    # Werkzeug stops a chunked body at the maximum without a word: one byte more tells one too large.
    request.max_content_length = MAX_BODY_BYTES + 1
    if len(request.get_data(cache=True)) > MAX_BODY_BYTES:
        _refuse_body(request)


def _refuse_body(request: flask.Request) -> NoReturn:
    # functions-framework reads the body after every answer: an empty stream keeps it from reading this one.
    request.stream = io.BytesIO()
    raise ApiError(413, f"body: must be at most {MAX_BODY_BYTES} bytes", code="payload_too_large", field="body")


def read_json_object(request: flask.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise Invalid("body", "must be a JSON object")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise Invalid("body", "nested too deeply") from None
    except ValueError as exc:
        raise Invalid("body", f"is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("body", "must be a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise Invalid("body", "nested too deeply")
    return body


def _depth(value: object) -> int:
    """How deeply arrays and objects nest in `value`, counted without recursion so no depth exhausts the stack."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        if depth <= MAX_DEPTH:
            pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


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


class Param(str):
    """A query parameter's name (for `params=`) carrying the JSON schema of what its reader accepts."""

    schema: dict[str, Any]

    def __new__(cls, name: str, schema: dict[str, Any]) -> Param:
        param = super().__new__(cls, name)
        param.schema = schema
        return param


def text_param(name: str, max_length: int) -> Param:
    """What `query_text(request, name, max_length)` accepts."""
    return Param(name, {"type": "string", "maxLength": max_length, "pattern": _text_pattern(_CONTROL, False)})


def choice_param(name: str, allowed: Iterable[str]) -> Param:
    """What `query_choice(request, name, allowed)` accepts."""
    return Param(name, {"type": "string", "enum": list(allowed)})


def count_param(name: str, low: int, high: int) -> Param:
    """What `query_int(request, name, default, low=low, high=high)` accepts."""
    return Param(name, {"type": "integer", "minimum": low, "maximum": high})


def amount_param(name: str) -> Param:
    """What `query_decimal(request, name)` accepts."""
    return Param(name, {"type": "number", "minimum": 0, "exclusiveMaximum": int(MAX_AMOUNT)})


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
        value = bounded_decimal(raw)
    except MoneyError as exc:
        raise Invalid(name, f"{exc}, got {raw!r}") from None
    if value < 0:
        raise Invalid(name, f"must be a non-negative number, got {raw!r}")
    return value


def query_text(request: flask.Request, name: str, max_length: int) -> str | None:
    """A text query parameter, trimmed; None when absent or empty, 400 when too long or holding control characters."""
    raw = request.args.get(name, "").strip()
    if len(raw) > max_length:
        raise Invalid(name, f"must be at most {max_length} characters")
    if not is_printable(raw):
        raise Invalid(name, NO_CONTROL_CHARACTERS)
    return raw or None


def uuid_param(name: str) -> Param:
    """What `query_uuid(request, name)` accepts."""
    return Param(name, {"type": "string", "format": "uuid", "maxLength": 64})


def query_uuid(request: flask.Request, name: str) -> uuid.UUID | None:
    """A UUID query parameter; None when absent or empty, 400 when it is not a UUID."""
    raw = query_text(request, name, 64)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid(name, f"must be a UUID, got {raw!r}") from None


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
    return None if moment is None else _utc_text(moment)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
