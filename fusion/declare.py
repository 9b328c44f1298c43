"""Declaring functions: decorators that register a function and adapt it to functions-framework.

Every function is an HTTP-signature function (`flask.Request -> flask.Response`), so one process
can serve it alone (a Knative Service, `FUNCTION_TARGET`) or next to the rest of its service
(the local platform). Event handlers answer as the Knative Kafka data plane expects: 204 with an
empty body when done, 400 for an event that can never be processed (dead-lettered at once),
5xx to be retried.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from fusion import logs, metrics, tracing
from fusion.auth import ANONYMOUS, Access, Principal, acting_as, admit_delivery, caller, stop_acting, verifier
from fusion.binding import Event, InvalidEvent, from_http
from fusion.config import check_service_secrets, settings
from fusion.db import database_reachable
from fusion.errors import DomainError
from fusion.registry import (
    SCHEDULED_RUNS,
    Delivery,
    FunctionSpec,
    Kind,
    Route,
    callable_of,
    functions_of,
    reading_declarations,
    register,
)
from fusion.topics import PING_TYPE, topic
from fusion.uow import UnitOfWork, unit_of_work
from fusion.web import ApiError, http_error, is_printable, json_response, limit_body, utc_now

HttpFunction = Callable[[flask.Request], flask.Response]
QueryFn = Callable[[flask.Request, dict[str, str]], flask.Response]
CommandFn = Callable[[flask.Request, dict[str, str], UnitOfWork], flask.Response]
EventFn = Callable[[Event, UnitOfWork], None]
ScheduledFn = Callable[[Event], None]
P = TypeVar("P", bound=BaseModel)
# What an HTTP function answers on success, for the OpenAPI document: a view model, a list of them
# (`list[OrderView]`) or a media type ("application/pdf"); by status when it has several or is not 200.
Answer = type[BaseModel] | type[list[Any]] | str
Answers = Answer | Mapping[int, Answer]

log = logging.getLogger("fusion.functions")
DONE = 204


class UnprocessableEvent(Exception):
    """An event that will never succeed (bad payload): answered 400 so it is dead-lettered at once."""


def payload_of(event: Event, model: type[P]) -> P:
    try:
        return model.model_validate(event.json())
    except (ValidationError, InvalidEvent) as exc:
        raise UnprocessableEvent(f"{event.type} payload does not match its contract: {exc}") from None


def boot(service: str, setup: Callable[[], None] | None = None) -> None:
    """Check the configuration (a bad value stops the process with a clear error), set up logs, and run the
    service's own `setup`. Nothing when its module is imported only for its declarations (`load_all`): the
    process serves another part, which has neither this service's settings nor its app."""
    if reading_declarations():
        return
    check_service_secrets(service)
    logs.configure(settings().log_level)
    logs.bind(service=service)
    tracing.name_process(service)
    if setup is not None:
        setup()


def health(service: str) -> flask.Response:
    ok = database_reachable()
    body = {"status": "ok" if ok else "unavailable", "service": service, "timestamp": utc_now()}
    return json_response(body, 200 if ok else 503)


def _is_health(request: flask.Request) -> bool:
    return request.method == "GET" and request.path.rstrip("/") == "/health"


def _internal_error(spec: FunctionSpec, exc: BaseException) -> flask.Response:
    import psycopg

    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        log.warning("database unavailable in %s: %s", spec.name, exc)
        return ApiError(503, "database unavailable, try again").response()
    log.exception("unexpected error in %s", spec.name)
    return json_response({"error": "internal", "message": "internal error"}, 500)


def _empty(status: int = DONE) -> flask.Response:
    return flask.Response(b"", status=status)


def _identify(spec: FunctionSpec, request: flask.Request) -> Principal:
    """The caller, admitted by the function's declared access (401 / 403 otherwise)."""
    if spec.access is None:
        return ANONYMOUS
    header = None if spec.access.signed else request.headers.get("Authorization")
    principal = verifier().principal(header) if header else ANONYMOUS
    spec.access.admit(principal)
    return principal


def _wrap(spec: FunctionSpec, serve: Callable[[flask.Request], flask.Response]) -> HttpFunction:
    def function(request: flask.Request) -> flask.Response:
        if _is_health(request):
            return health(spec.service)
        if spec.kind != "http":  # an event's span continues the event's traceparent, read in `serve`
            return _answer(spec, serve, request)
        with tracing.span(f"{request.method} {spec.name}", "server", request.headers.get("traceparent"),
                          {"http.request.method": request.method, "url.path": request.path}) as traced:
            response = _answer(spec, serve, request)
            traced.note("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                traced.failed(f"answered {response.status_code}")
            return response

    measured = _measured(spec, function)
    measured.__name__ = spec.target
    measured.spec = spec  # type: ignore[attr-defined]
    register(spec, measured)
    return measured


def _measured(spec: FunctionSpec, function: HttpFunction) -> HttpFunction:
    """`function` counted by route and status and timed; /metrics answered before anything else."""
    def measured(request: flask.Request) -> flask.Response:
        if metrics.is_metrics_request(request.method, request.path):
            return _metrics()
        started = time.perf_counter()
        response = function(request)
        if not _is_health(request):
            metrics.observe_request(spec.service, spec.name, _route_label(spec, request), response.status_code,
                                    time.perf_counter() - started)
        return response

    return measured


def _metrics() -> flask.Response:
    body, content_type = metrics.exposition()
    return flask.Response(body, status=200, content_type=content_type)


def _route_label(spec: FunctionSpec, request: flask.Request) -> str:
    """The declared route a request came in by ("GET /orders/{id}"): a label of bounded cardinality."""
    if spec.kind != "http":
        return spec.kind  # "cloudevent" or "scheduled": one delivery route each
    route = next((route for route in spec.routes if route.match(request.method, request.path) is not None), None)
    return metrics.UNMATCHED if route is None else str(route)


def _answer(spec: FunctionSpec, serve: Callable[[flask.Request], flask.Response],
            request: flask.Request) -> flask.Response:
    acting = None
    try:
        limit_body(request)
        acting = acting_as(_identify(spec, request))
        with logs.log_context(service=spec.service, function=spec.name):
            return serve(request)
    except ApiError as exc:
        return exc.response()
    except DomainError as exc:
        return http_error(exc).response()
    except Exception as exc:
        return _internal_error(spec, exc)
    finally:
        if acting is not None:
            stop_acting(acting)


def _routes(routes: Iterable[str]) -> tuple[Route, ...]:
    parsed = []
    for route in routes:
        method, _, path = route.partition(" ")
        parsed.append(Route(method.upper(), path))
    return tuple(parsed)


def find_route(specs: Iterable[FunctionSpec], method: str, path: str) -> tuple[FunctionSpec, dict[str, str]]:
    """The function whose route matches, with the path parameters; 405 when only the method differs, else 404."""
    if not is_printable(path):  # control characters name nothing (and PostgreSQL refuses NUL)
        raise _no_route(method, path)
    matching: list[Route] = []
    for spec in specs:
        for route in spec.routes:
            params = route.match(method, path)
            if params is not None:
                return spec, params
            if route.pattern.match(path):
                matching.append(route)
    if matching:  # RFC 9110: a 405 lists the methods the path takes, by its most specific routes
        fewest = min(route.path.count("{") for route in matching)
        allowed = sorted({route.method for route in matching if route.path.count("{") == fewest})
        raise ApiError(405, f"{method} is not allowed on {path}", headers={"Allow": ", ".join(allowed)})
    raise _no_route(method, path)


def _no_route(method: str, path: str) -> ApiError:
    return ApiError(404, f"no route for {method} {path}")


def _match(spec: FunctionSpec, request: flask.Request) -> dict[str, str]:
    return find_route([spec], request.method, request.path)[1]


def _http_spec(name: str, service: str, routes: Iterable[str], auth: Access, summary: str, target: str,
               extra: dict[str, Any], answers: Answers | None) -> FunctionSpec:
    if answers is not None:
        extra["answers"] = dict(answers) if isinstance(answers, Mapping) else {200: answers}
    return FunctionSpec(name=name, target=target, service=service, kind="http", routes=_routes(routes),
                        access=auth, summary=summary, extra=extra)


def query(
    name: str, *, service: str, routes: Iterable[str], auth: Access, summary: str = "",
    params: Sequence[str] = (), answers: Answers | None = None,
) -> Callable[[QueryFn], HttpFunction]:
    """A read-only HTTP function; `params` names the query parameters it reads and `answers` what it answers
    on success (for the OpenAPI document).

    `auth` says who may call it (fusion.auth: PUBLIC, CUSTOMER, staff(scope), customer_or_staff(scope), SIGNED).
    """

    def decorate(fn: QueryFn) -> HttpFunction:
        spec = _http_spec(name, service, routes, auth, summary or (fn.__doc__ or "").strip(), fn.__name__,
                          {"params": tuple(params)}, answers)
        return _wrap(spec, lambda request: fn(request, _match(spec, request)))

    return decorate


def command(
    name: str, *, service: str, routes: Iterable[str], auth: Access, summary: str = "",
    body: type[BaseModel] | None = None, answers: Answers | None = None,
) -> Callable[[CommandFn], HttpFunction]:
    """An HTTP function that changes state in one unit of work, honouring an `Idempotency-Key` header.

    A command that commits part-way (`uow.commit()`) must be safe to run again: a key it claimed but never
    answered (it failed, or its process died) runs it again.

    `body` is the model the function parses its JSON body with (for the OpenAPI document); `auth` and
    `answers` as for `query`.
    """

    def decorate(fn: CommandFn) -> HttpFunction:
        spec = _http_spec(name, service, routes, auth, summary or (fn.__doc__ or "").strip(), fn.__name__,
                          {"body": body}, answers)

        def serve(request: flask.Request) -> flask.Response:
            params = _match(spec, request)
            key = request.headers.get("Idempotency-Key", "").strip()
            scope = _idempotency_scope(spec)
            with unit_of_work(service) as uow:
                if key:
                    replay = _claim_idempotency_key(uow, scope, key, request)
                    if replay is not None:
                        return replay
                response = fn(request, params, uow)
                if key:
                    _remember_response(uow, scope, key, response)
                return response

        return _wrap(spec, serve)

    return decorate


def _idempotency_scope(spec: FunctionSpec) -> str:
    """Keys are the caller's own: the same key from two callers names two requests."""
    who = caller()
    return spec.name if who.subject is None else f"{spec.name}|{who.kind}:{who.subject}"


def _request_hash(request: flask.Request) -> str:
    digest = hashlib.sha256(request.path.encode() + b"\0" + request.get_data(cache=True))
    return digest.hexdigest()


def _claim_idempotency_key(uow: UnitOfWork, scope: str, key: str, request: flask.Request) -> flask.Response | None:
    if len(key) > 255 or not is_printable(key):
        raise ApiError(400, "Idempotency-Key must be at most 255 printable characters", field="Idempotency-Key")
    request_hash = _request_hash(request)
    claimed = uow.execute(
        f"INSERT INTO {uow.schema}.idempotency_keys (scope, key, request_hash, status, body) "
        "VALUES (:scope, :key, :hash, 0, 'null') ON CONFLICT DO NOTHING RETURNING 1",
        {"scope": scope, "key": key, "hash": request_hash},
    ).first()
    if claimed is not None:
        uow.undo_on_failure(f"DELETE FROM {uow.schema}.idempotency_keys WHERE scope = :scope AND key = :key "
                            "AND status = 0", {"scope": scope, "key": key})
        return None
    stored = uow.execute(
        f"SELECT request_hash, status, body::text FROM {uow.schema}.idempotency_keys "
        "WHERE scope = :scope AND key = :key",
        {"scope": scope, "key": key},
    ).one()
    if stored.request_hash != request_hash:
        raise ApiError(422, "Idempotency-Key was already used with a different request",
                       code="idempotency_key_reused", field="Idempotency-Key")
    if stored.status == 0:  # claimed by a command that committed part-way and never answered: run it again
        return None
    return flask.Response(stored.body, status=stored.status, mimetype="application/json",
                          headers={"Idempotent-Replayed": "true"})


def _remember_response(uow: UnitOfWork, scope: str, key: str, response: flask.Response) -> None:
    uow.execute(
        f"UPDATE {uow.schema}.idempotency_keys SET status = :status, body = CAST(:body AS jsonb) "
        "WHERE scope = :scope AND key = :key",
        {"scope": scope, "key": key, "status": response.status_code,
         "body": response.get_data(as_text=True) or "null"},
    )


def _event_spec(name: str, service: str, kind: Kind, topics: tuple[str, ...], delivery: Delivery,
                schedule: str | None, summary: str, target: str) -> FunctionSpec:
    for topic_name in topics:
        topic(topic_name)  # an unknown topic fails at declaration
    return FunctionSpec(name=name, target=target, service=service, kind=kind, topics=topics,
                        delivery=delivery, schedule=schedule, summary=summary)


def _read_event(request: flask.Request) -> Event:
    if request.method != "POST":
        raise ApiError(405, "CloudEvents are delivered with POST")
    try:
        return from_http(dict(request.headers), request.get_data())
    except InvalidEvent as exc:
        raise ApiError(400, str(exc), code="invalid_cloudevent") from None


def event_handler(name: str, *, service: str, topics: Iterable[str], delivery: Delivery,
                  summary: str = "") -> Callable[[EventFn], HttpFunction]:
    """A CloudEvent handler: its effect and the inbox record commit together, so effects are exactly-once."""

    def decorate(fn: EventFn) -> HttpFunction:
        spec = _event_spec(name, service, "cloudevent", tuple(topics), delivery, None,
                           summary or (fn.__doc__ or "").strip(), fn.__name__)
        handled = {topic(t).type for t in spec.topics}

        def serve(request: flask.Request) -> flask.Response:
            admit_delivery(spec.name, request.headers.get("Authorization"))
            event = _read_event(request)
            if event.type not in handled:
                log.warning("ignored event of type %s: %s handles %s", event.type, name, sorted(handled))
                return _empty()
            with logs.log_context(eventId=event.id, eventType=event.type), \
                    tracing.span(f"{spec.name} {event.type}", "consumer", event.attributes.get("traceparent"),
                                 {"messaging.message.id": event.id, "cloudevents.event_type": event.type}):
                try:
                    with unit_of_work(service) as uow:
                        if uow.first_delivery(spec.name, event):
                            fn(event, uow)
                        else:
                            log.info("duplicate delivery of %s ignored", event.id)
                except UnprocessableEvent as exc:
                    log.error("unprocessable event %s: %s", event.id, exc)
                    return ApiError(400, str(exc), code="unprocessable_event").response()
            return _empty()

        return _wrap(spec, serve)

    return decorate


def scheduled(name: str, *, service: str, schedule: str, delivery: Delivery | None = None,
              summary: str = "") -> Callable[[ScheduledFn], HttpFunction]:
    """A function fired on a cron schedule (a PingSource in the cluster, the local router on a laptop)."""

    def decorate(fn: ScheduledFn) -> HttpFunction:
        spec = _event_spec(name, service, "scheduled", (), delivery or SCHEDULED_RUNS, schedule,
                           summary or (fn.__doc__ or "").strip(), fn.__name__)

        def serve(request: flask.Request) -> flask.Response:
            admit_delivery(spec.name, request.headers.get("Authorization"))
            event = _read_event(request)
            if event.type != PING_TYPE:
                log.warning("ignored event of type %s: %s runs on %s", event.type, name, PING_TYPE)
                return _empty()
            with logs.log_context(eventId=event.id), tracing.span(spec.name, "internal", None):
                fn(event)
            return _empty()

        return _wrap(spec, serve)

    return decorate


def _call(name: str, request: flask.Request) -> flask.Response:
    function: HttpFunction = callable_of(name)
    return function(request)


def service_dispatcher(service: str) -> HttpFunction:
    """One HTTP function serving all of a service's functions (the local platform's process per service)."""

    def serve(request: flask.Request) -> flask.Response:
        if _is_health(request):
            return health(service)
        if metrics.is_metrics_request(request.method, request.path):
            return _metrics()
        specs = functions_of(service)
        if request.path.startswith("/_functions/"):
            name = request.path.removeprefix("/_functions/").strip("/")
            if any(spec.name == name and spec.kind != "http" for spec in specs):
                return _call(name, request)
        try:
            spec, _ = find_route(specs, request.method, request.path)
        except ApiError as exc:
            metrics.observe_request(service, "", metrics.UNMATCHED, exc.status, 0.0)
            return exc.response()
        return _call(spec.name, request)

    serve.__name__ = "serve"
    _guard_every_path(serve)
    return serve


def _guard_every_path(serve: HttpFunction) -> None:
    """Refuse oversized bodies and answer Werkzeug's own refusals (a path its `<path:path>` rule cannot match,
    such as one with a newline; /robots.txt) in the JSON error shape, on every path of the app; and hand
    Flask's own /static/<filename> route, which would answer before any function, to the service's functions.

    functions-framework runs main.py, which builds the dispatcher, inside the app it is creating, so this
    holds for a service process and for a single-function one (FUNCTION_TARGET) alike; not for a module imported
    only for its declarations, whose app (the current one, if any) serves another part.
    """
    if flask.has_app_context() and not reading_declarations():
        flask.current_app.before_request(_body_within_limit)
        flask.current_app.register_error_handler(HTTPException, _json_http_error)
        flask.current_app.view_functions["static"] = lambda filename: serve(flask.request)


def _body_within_limit() -> flask.Response | None:
    try:
        limit_body(flask.request)
    except ApiError as exc:
        return exc.response()
    return None


def _json_http_error(error: HTTPException) -> flask.Response:
    if error.code == 404:
        return _no_route(flask.request.method, flask.request.path).response()
    return ApiError(error.code or 500, error.description or error.name).response()



