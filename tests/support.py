"""Small helpers shared by the test suites."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from fusion import db
from fusion.auth import STAFF_SCOPES, delivery_audience
from fusion.binding import Event, to_http
from fusion.local.issuer import ROUTER_SUBJECT, IssuerKey

EVENT_PATH = "/_functions/"  # where a service process takes its functions' deliveries


def deliver(service: FlaskClient, function: str, event: Event) -> int:
    """Hand `event` to one of the service's event functions as the event plane does; the status it answers."""
    headers, body = to_http(event)
    return service.post(f"{EVENT_PATH}{function}", headers=headers, data=body).status_code


def sql(statement: str, **params: Any) -> Any:
    """Run a statement on the test database and commit it (to set up or break a state directly)."""
    with db.pool().begin() as conn:
        return conn.execute(statement, params)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedOverHttp:
    """A WSGI app (a service's functions-framework app) served over real HTTP on a free port, in a thread,
    as another service reaches it; `stop()` leaves nothing listening there."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass
class Tokens:
    """Real tokens of a local issuer, cached per identity (signing costs about a millisecond)."""

    key: IssuerKey
    issuer: str
    audience: str
    _minted: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def _token(self, subject: str, scopes: tuple[str, ...]) -> str:
        if (subject, scopes) not in self._minted:
            self._minted[subject, scopes] = self.key.mint(self.issuer, self.audience, subject, scopes)
        return self._minted[subject, scopes]

    def customer(self, customer_id: str) -> str:
        return self._token(customer_id, ())

    def staff(self, *scopes: str) -> str:
        return self._token("staff-" + "-".join(sorted(scopes)), tuple(sorted(scopes)))

    def all_staff(self) -> str:
        return self.staff(*STAFF_SCOPES)

    def delivery(self, function: str) -> str:
        """The event plane's token for delivering to `function`, as the router presents it."""
        audience = delivery_audience(function)
        if ("delivery", (audience,)) not in self._minted:
            self._minted["delivery", (audience,)] = self.key.mint(self.issuer, audience, ROUTER_SUBJECT)
        return self._minted["delivery", (audience,)]


def customer_in(body: Any) -> str | None:
    """The customer a request body acts for (`customerId`, or `userId` for a campaign seat)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or "null")
        except ValueError:
            return None
    if isinstance(body, dict):
        found = body.get("customerId") or body.get("userId")
        return found if isinstance(found, str) else None
    return None


class ActingClient(FlaskClient):
    """A test client whose requests carry a real token: the given one, or, by default, the event plane's
    token for a delivery to a function, the customer the body names (customerId / userId), else a staff
    token holding every scope. The access rules themselves are tested with explicit tokens
    (tests/component/test_access.py, tests/component/test_event_senders.py)."""

    tokens: Tokens
    fixed: str | bool | None = False  # False: choose per request; None: anonymous; str: this token

    def open(self, *args: Any, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        path = args[0] if args and isinstance(args[0], str) else ""
        if "Authorization" not in headers and self.fixed is False and path.startswith(EVENT_PATH):
            headers["Authorization"] = f"Bearer {self.tokens.delivery(path.removeprefix(EVENT_PATH).strip('/'))}"
        if "Authorization" not in headers:
            token = self._token_for(kwargs.get("json", kwargs.get("data")))
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
        return super().open(*args, headers=headers, **kwargs)

    def _token_for(self, body: Any) -> str | None:
        if self.fixed is not False:
            return self.fixed if isinstance(self.fixed, str) else None
        customer = customer_in(body)
        return self.tokens.customer(customer) if customer else self.tokens.all_staff()
