"""The function registry: every function declared once, next to its code.

The Knative manifests, the local platform's routing and scheduling, the OpenAPI document and
the consistency checks are all derived from these declarations.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from fusion.auth import Access

Kind = Literal["http", "cloudevent", "scheduled"]
FUNCTION_MODULES = (
    "functions.catalog.main",
    "functions.orders.main",
    "functions.inventory.main",
    "functions.group_commerce.main",
    "functions.payments.main",
    "functions.shipping.main",
    "functions.storefront.main",
    "functions.operations.main",
)


@dataclass(frozen=True, kw_only=True)
class Service:
    """A deployable service: declared once in its own `main.py`, next to its functions."""

    name: str
    port: int  # the original port; locally shifted by FUSION_PORT_OFFSET
    cpu_limit: str
    memory_limit: str
    min_replicas: int  # production floor
    max_replicas: int  # production ceiling
    cpu_target: int  # percent

    @property
    def package(self) -> str:
        return self.name.replace("-", "_")

    @property
    def local_port(self) -> int:
        """The port on a laptop: the original one, shifted by FUSION_PORT_OFFSET (tests run beside `make dev`)."""
        return self.port + int(os.environ.get("FUSION_PORT_OFFSET", "0") or 0)

    @property
    def source(self) -> str:
        """The file functions-framework loads (`--source`)."""
        return f"functions/{self.package}/main.py"


_services: dict[str, Service] = {}


def declare_service(service: Service) -> Service:
    """Register a service (called by its `main.py`)."""
    existing = _services.get(service.name)
    if existing is not None and existing != service:
        raise ValueError(f"service {service.name!r} declared twice with different settings")
    _services[service.name] = service
    return service


def services() -> dict[str, Service]:
    """Every service, in the order of FUNCTION_MODULES (the order manifests and tables list them)."""
    load_all()
    return dict(_services)


def service_named(name: str) -> Service:
    if name not in _services:
        load_all()
    try:
        return _services[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}") from None


@dataclass(frozen=True)
class Delivery:
    """How the platform delivers events to a handler (Knative Trigger `delivery` and the local router)."""

    retries: int = 3
    backoff: Literal["exponential", "linear"] = "exponential"
    delay: float = 1.0  # seconds
    timeout: float = 30.0  # per attempt, seconds
    ordered: bool = True  # one in-flight event per partition key

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry n (n = 1, 2, …), as the Knative Kafka dispatcher computes it."""
        return self.delay * retry if self.backoff == "linear" else self.delay * 2**retry


# The original delivery policy table, one policy per kind of event (retries before the dead letters).
PRODUCT_EVENTS = Delivery(retries=3, backoff="exponential", delay=1.0)
ORDER_EVENTS = Delivery(retries=3, backoff="exponential", delay=0.5)  # order.*: waits 1 s, 2 s, 4 s
RESERVATION_EVENTS = Delivery(retries=3, backoff="linear", delay=1.0)  # inventory reservation: 1 s, 2 s, 3 s
PAYMENT_EVENTS = Delivery(retries=5, backoff="exponential", delay=1.0)  # payment processing: 2 s … 32 s
SHIPPING_EVENTS = Delivery(retries=3, backoff="exponential", delay=2.5)  # shipping: 5 s, 10 s, 20 s
SCHEDULED_RUNS = Delivery(retries=2, backoff="exponential", delay=1.0)  # a missed tick is retried twice


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # e.g. /products/{id}

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "/?$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # kebab-case, unique: the Knative Service name
    target: str  # the Python name functions-framework serves (FUNCTION_TARGET)
    service: str
    kind: Kind
    routes: tuple[Route, ...] = ()
    topics: tuple[str, ...] = ()  # topics whose events it handles
    delivery: Delivery | None = None
    schedule: str | None = None  # cron, for scheduled functions
    access: Access | None = None  # who may call an HTTP function
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def service_spec(self) -> Service:
        return service_named(self.service)

    @property
    def policy(self) -> Delivery:
        """The delivery policy of an event or scheduled function (HTTP functions have none)."""
        if self.delivery is None:
            raise ValueError(f"{self.name} is an HTTP function: it has no delivery policy")
        return self.delivery

    @property
    def event_path(self) -> str:
        """Where the local platform delivers this function's events on its service port."""
        return f"/_functions/{self.name}"


_registry: dict[str, FunctionSpec] = {}
_callables: dict[str, Callable[..., Any]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")


def register(spec: FunctionSpec, function: Callable[..., Any]) -> None:
    if not _NAME.match(spec.name):
        raise ValueError(f"function name {spec.name!r} must be kebab-case (a Knative Service name)")
    existing = _registry.get(spec.name)
    if existing is not None and existing.target != spec.target:
        raise ValueError(f"function name {spec.name!r} declared twice ({existing.target}, {spec.target})")
    _registry[spec.name] = spec
    _callables[spec.name] = function


_reading_declarations = 0  # > 0 while load_all imports services' modules only to read what they declare
_reading_lock = threading.RLock()


def reading_declarations() -> bool:
    """Whether services' modules are being imported only for their declarations (by the router, the relay, the
    gateway, the operations service), not to be served: they then check no settings and set nothing up."""
    return _reading_declarations > 0


def load_all() -> dict[str, FunctionSpec]:
    """Import every service's functions and return the whole registry, by name."""
    global _reading_declarations
    with _reading_lock:
        _reading_declarations += 1
        try:
            for module in FUNCTION_MODULES:
                importlib.import_module(module)
        finally:
            _reading_declarations -= 1
    undeclared = sorted({spec.service for spec in _registry.values()} - set(_services))
    if undeclared:
        raise ValueError(f"functions name undeclared services: {', '.join(undeclared)}")
    return dict(_registry)


def functions_of(service: str) -> list[FunctionSpec]:
    return [spec for spec in _registry.values() if spec.service == service]


def callable_of(name: str) -> Callable[..., Any]:
    return _callables[name]
