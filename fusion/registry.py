"""The function registry: every function declared once, next to its code.

The Knative manifests, the local platform's routing and scheduling, the OpenAPI document and
the consistency checks are all derived from these declarations.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Kind = Literal["http", "cloudevent", "scheduled"]
FUNCTION_MODULES = (
    "functions.catalog.main",
    "functions.orders.main",
    "functions.inventory.main",
    "functions.group_commerce.main",
    "functions.payments.main",
    "functions.shipping.main",
)


@dataclass(frozen=True)
class Service:
    name: str
    port: int
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


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("catalog", 3000, "500m", "512Mi", 2, 8, 70),
        Service("orders", 3001, "1000m", "1Gi", 2, 10, 70),
        Service("inventory", 3002, "1000m", "1Gi", 2, 10, 70),
        Service("group-commerce", 3003, "500m", "512Mi", 1, 5, 70),
        Service("payments", 3004, "500m", "512Mi", 2, 8, 60),
        Service("shipping", 3005, "500m", "512Mi", 1, 5, 70),
    )
}


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
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def service_spec(self) -> Service:
        return SERVICES[self.service]

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
    if spec.service not in SERVICES:
        raise ValueError(f"function {spec.name!r}: unknown service {spec.service!r}")
    existing = _registry.get(spec.name)
    if existing is not None and existing.target != spec.target:
        raise ValueError(f"function name {spec.name!r} declared twice ({existing.target}, {spec.target})")
    _registry[spec.name] = spec
    _callables[spec.name] = function


def load_all() -> dict[str, FunctionSpec]:
    """Import every service's functions and return the whole registry, by name."""
    for module in FUNCTION_MODULES:
        importlib.import_module(module)
    return dict(_registry)


def functions_of(service: str) -> list[FunctionSpec]:
    return [spec for spec in _registry.values() if spec.service == service]


def callable_of(name: str) -> Callable[..., Any]:
    return _callables[name]
