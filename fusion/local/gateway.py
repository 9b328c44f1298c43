"""The gateway: one origin for the pages and the HTTP API, routed by the function registry.

Every request is matched once against the declared routes (`find_route`, the same match the services
make) and sent to the service that owns the route: method, path, query, headers (Authorization,
Idempotency-Key…), body and answer unchanged, but for the hop-by-hop headers, which belong to one
connection only, and the X-Forwarded-* headers it adds. A body is read whole first, up to the services'
limit (a chunked one too, then forwarded with its Content-Length). What no route declares answers 404 in
the services' JSON shape, so internal paths (`/_functions/*`, `/metrics`, a service's `/health`) are
never reached from outside. A service that does not answer is a 502, one too slow a 504. `GET /healthz`
is the gateway's own health.

A request the gateway answers itself without reading its body closes the connection: the unread body
would otherwise be taken for the next request. A client silent for CLIENT_TIMEOUT is disconnected.

Connections to the services are kept alive and reused (a small pool per service), so a request costs
one round trip on an open connection.
"""

from __future__ import annotations

import http.client
import logging
import queue
import re
import select
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import flask

from fusion.declare import find_route
from fusion.metrics import METRICS_PATH
from fusion.registry import FunctionSpec
from fusion.web import MAX_BODY_BYTES, ApiError, json_response, utc_now

log = logging.getLogger("fusion.gateway")

CONNECT_TIMEOUT = 2.0  # seconds: a service that does not accept a connection by then is down
ANSWER_TIMEOUT = 30.0  # seconds: as long as a Knative Service lets a request take (serving.HTTP_TIMEOUT_SECONDS)
CLIENT_TIMEOUT = 30.0  # seconds a client may stay silent (idle keep-alive, a request sent slowly) before it is let go
IDLE_CONNECTIONS = 16  # kept open per service
CHUNK = 64 * 1024
HEALTH_PATH = "/healthz"
# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded (plus those `Connection` names).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
INTERNAL_PREFIXES = ("/_functions/",)
INTERNAL_PATHS = frozenset({"/_functions", METRICS_PATH, "/health"})
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
MAX_LINE = 8 * 1024  # a chunk-size or trailer line longer than this is no honest client's


@dataclass(frozen=True)
class Backend:
    """Where a service listens."""

    service: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class RouteTable:
    """The HTTP routes of the registry and the service behind each, built once."""

    def __init__(self, specs: list[FunctionSpec], url_of: Callable[[FunctionSpec], str]):
        self.specs = [spec for spec in specs if spec.kind == "http" and spec.routes]
        self.backends: dict[str, Backend] = {}
        for spec in self.specs:
            if spec.service not in self.backends:
                parts = urllib.parse.urlsplit(url_of(spec))
                self.backends[spec.service] = Backend(spec.service, parts.hostname or "127.0.0.1", parts.port or 80)

    def backend_for(self, method: str, path: str) -> Backend:
        """The service that answers `method path`; ApiError 404 (405) when no route takes it."""
        if is_internal(path):
            raise ApiError(404, f"no route for {method} {path}")
        spec, _ = find_route(self.specs, method, path)
        return self.backends[spec.service]


def is_internal(path: str) -> bool:
    """A path the services answer for the platform only: event deliveries, metrics, their health."""
    trimmed = path.rstrip("/") or "/"
    return trimmed in INTERNAL_PATHS or path.startswith(INTERNAL_PREFIXES)


class Pool:
    """Idle keep-alive connections to one service."""

    def __init__(self, backend: Backend, size: int = IDLE_CONNECTIONS):
        self.backend = backend
        self.idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue(size)

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was used before; idle ones the service has closed meanwhile are dropped."""
        while True:
            try:
                connection = self.idle.get_nowait()
            except queue.Empty:
                return http.client.HTTPConnection(self.backend.host, self.backend.port, timeout=CONNECT_TIMEOUT), False
            if _still_open(connection):
                return connection, True
            connection.close()

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        try:
            self.idle.put_nowait(connection)
        except queue.Full:
            connection.close()


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection is still open: a closed one is readable, with nothing to read."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


class BackendDown(Exception):
    """The service refused or dropped the connection."""


class BackendSlow(Exception):
    """The service did not answer within the gateway's answer timeout."""


def forwarded_headers(headers: list[tuple[str, str]], client: str) -> list[tuple[str, str]]:
    """The request's end-to-end headers, with the client appended to X-Forwarded-For; the body's framing
    (Content-Length, chunked) and its Expect are the gateway's own business on the way to the service."""
    dropped = HOP_BY_HOP | _named_by_connection(headers) | {"content-length", "expect"}
    kept = [(name, value) for name, value in headers if name.lower() not in dropped]
    earlier = [value for name, value in kept if name.lower() == "x-forwarded-for"]
    kept = [(name, value) for name, value in kept
            if name.lower() not in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")]
    host = next((value for name, value in headers if name.lower() == "host"), "")
    kept.append(("X-Forwarded-For", ", ".join([*earlier, client])))
    kept.append(("X-Forwarded-Proto", "http"))
    if host:
        kept.append(("X-Forwarded-Host", host))
    return kept


def answer_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The service's answer headers without the hop-by-hop ones."""
    dropped = HOP_BY_HOP | _named_by_connection(headers)
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def _named_by_connection(headers: list[tuple[str, str]]) -> set[str]:
    return {token.strip().lower() for name, value in headers if name.lower() == "connection"
            for token in value.split(",") if token.strip()}


@dataclass
class Gateway:
    routes: RouteTable
    answer_timeout: float = ANSWER_TIMEOUT
    client_timeout: float = CLIENT_TIMEOUT
    pools: dict[str, Pool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pools = {name: Pool(backend) for name, backend in self.routes.backends.items()}

    def exchange(self, backend: Backend, method: str, target: str, headers: list[tuple[str, str]],
                 body: bytes | None) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """Send the request; the answer with the connection it came on (given back once read).

        A kept-alive connection the service closed just as it was taken fails at once: a request that may be
        repeated (RFC 9110 idempotent methods; every body is held in memory) is sent again on a new connection;
        any other is a 502, since the service may have acted on it."""
        pool = self.pools[backend.service]
        while True:
            connection, reused = pool.take()
            try:
                return self._send(connection, method, target, headers, body), connection
            except TimeoutError:
                connection.close()
                raise BackendSlow() from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                connection.close()
                if reused and method in IDEMPOTENT:
                    continue
                raise BackendDown(str(exc) or type(exc).__name__) from None

    def _send(self, connection: http.client.HTTPConnection, method: str, target: str,
              headers: list[tuple[str, str]], body: bytes | None) -> http.client.HTTPResponse:
        if connection.sock is None:
            try:
                connection.connect()
            except TimeoutError:  # not even accepting connections: down, not slow
                raise ConnectionError(f"no connection within {CONNECT_TIMEOUT:g} s") from None
        sock = connection.sock
        assert sock is not None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.answer_timeout)
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)  # headers and body in one packet
        return connection.getresponse()


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the clients too
    server: GatewayServer
    body_read = False  # whether this request's body has been read off the connection

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.gateway.client_timeout)  # a silent client frees its thread
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait between writes

    def do_request(self) -> None:
        self.body_read = False
        # Only a path is forwarded as it was matched: not an absolute URL, nor "*". (http.server has already
        # reduced a leading "//", which urlsplit would take for a host, to "/".)
        if not self.path.startswith("/"):
            return self._refusal(ApiError(400, "the request target must be a path starting with /", field="path"))
        # Matched as the services see it: percent-decoded (so an encoded /metrics is still internal).
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path) or "/"
        if path == HEALTH_PATH and self.command in ("GET", "HEAD"):
            return self._answer(json_response({"status": "ok", "service": "gateway", "timestamp": utc_now()}))
        try:
            backend = self.server.gateway.routes.backend_for(self.command, path)
        except ApiError as exc:
            return self._refusal(exc)
        self._proxy(backend)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_request

    def _proxy(self, backend: Backend) -> None:
        try:
            body = self._request_body()
        except ApiError as exc:
            return self._refusal(exc)
        headers = forwarded_headers(list(self.headers.items()), self.client_address[0])
        try:
            response, connection = self.server.gateway.exchange(backend, self.command, self.path, headers, body)
        except BackendDown as exc:
            log.warning("%s %s: %s at %s is down: %s", self.command, self.path, backend.service, backend.address, exc)
            return self._refusal(ApiError(502, f"the {backend.service} service is not answering at "
                                          f"{backend.address}; try again shortly", code="bad_gateway"))
        except BackendSlow:
            return self._refusal(ApiError(504, f"the {backend.service} service did not answer within "
                                          f"{self.server.gateway.answer_timeout:g} s", code="gateway_timeout"))
        self._relay_answer(backend, response, connection)

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length", "0").strip()
        return self._is_chunked() or length != "0"

    def _is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _request_body(self) -> bytes | None:
        """The body to forward, read whole: no more than the services' limit."""
        if self._is_chunked():
            body = self._read_chunked()
        else:
            length = self.headers.get("Content-Length")
            if length is None:
                return None
            if not length.isdigit():
                raise ApiError(400, "Content-Length must be a number of bytes", field="Content-Length")
            if int(length) > MAX_BODY_BYTES:
                raise _too_large()
            body = self.rfile.read(int(length))
        self.body_read = True
        return body

    def _read_chunked(self) -> bytes:
        """A chunked body (RFC 9112 §7.1), trailers dropped; 413 once it grows past MAX_BODY_BYTES, which is
        not read, and 400 for a chunk that is not framed as one."""
        pieces: list[bytes] = []
        total = 0
        while True:
            size = self._chunk_size()
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _too_large()
            piece = self.rfile.read(size)
            if len(piece) < size or self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n"):
                raise _bad_chunk("a chunk is shorter than its size or not followed by CRLF")
            pieces.append(piece)
        while (line := self.rfile.readline(MAX_LINE)) not in (b"\r\n", b"\n"):
            if not line.endswith(b"\n"):
                raise _bad_chunk("the trailer section does not end")
        return b"".join(pieces)

    def _chunk_size(self) -> int:
        line = self.rfile.readline(MAX_LINE)
        digits = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not CHUNK_SIZE.fullmatch(digits):
            raise _bad_chunk(f"{digits[:20]!r} is not a chunk size in hexadecimal")
        return int(digits, 16)

    def _relay_answer(self, backend: Backend, response: http.client.HTTPResponse,
                      connection: http.client.HTTPConnection) -> None:
        headers = answer_headers(response.getheaders())
        length = response.getheader("Content-Length")
        bodiless = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        chunked = length is None and not bodiless
        self.send_response_only(response.status, response.reason)
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while not bodiless:
                piece = response.read1(CHUNK) if chunked else response.read(CHUNK)
                if not piece:
                    break
                self.wfile.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except TimeoutError:
            log.warning("%s %s: %s stopped answering mid-body", self.command, self.path, backend.service)
            self.close_connection = True
            connection.close()
            return
        except (BrokenPipeError, ConnectionResetError):  # the client went away: the rest of the answer is unread
            self.close_connection = True
            connection.close()
            return
        response.close()
        if response.will_close:
            connection.close()
        else:
            self.server.gateway.pools[backend.service].give_back(connection)

    def _refusal(self, error: ApiError) -> None:
        self._answer(error.response())

    def _answer(self, answer: flask.Response) -> None:
        """An answer of the gateway's own; the connection closes after it when the request's body is left unread."""
        if self._has_body() and not self.body_read:
            self.close_connection = True
        body = answer.get_data()
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


def _too_large() -> ApiError:
    return ApiError(413, f"body: must be at most {MAX_BODY_BYTES} bytes", code="payload_too_large", field="body")


def _bad_chunk(problem: str) -> ApiError:
    return ApiError(400, f"body: badly chunked: {problem}", field="body")


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: Gateway):
        self.gateway = gateway
        super().__init__(address, GatewayHandler)


def serve(host: str, port: int, gateway: Gateway) -> GatewayServer:
    """Start serving in a thread of its own; `shutdown()` stops it."""
    server = GatewayServer((host, port), gateway)
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
    return server


def from_registry(url_template: str | None = None) -> Gateway:
    """The gateway in front of every service of the registry, at the local ports or at `url_template`
    (FUSION_SERVICE_URL_TEMPLATE, e.g. "http://{service}:{port}" in Compose)."""
    from fusion.registry import load_all
    from fusion.router import service_url_from

    return Gateway(RouteTable(list(load_all().values()), service_url_from(url_template)))
