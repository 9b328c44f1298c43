"""The local router and the Knative manifests route the same events to the same functions."""

from __future__ import annotations

from fusion.knative.render import KNATIVE_DIR, load_manifests
from fusion.knative.routing import routes_in, schedule_routes
from fusion.registry import load_all
from fusion.router import Scheduler, Sender, local_url, service_url_from, subscriptions


def test_the_router_delivers_what_the_production_triggers_deliver() -> None:
    specs = list(load_all().values())
    router_routes = {sub.name: set(sub.types) for sub in subscriptions(specs, local_url)}
    assert router_routes == routes_in(KNATIVE_DIR / "overlays" / "production")
    assert router_routes == routes_in(KNATIVE_DIR / "overlays" / "staging")


def test_the_router_fires_what_the_ping_sources_fire() -> None:
    import threading

    specs = list(load_all().values())
    scheduler = Scheduler(specs, Sender(None, threading.Event()), local_url, threading.Event())
    fired = {spec.name: cron.expression for spec, cron in scheduler.jobs}
    assert fired == schedule_routes(load_manifests(KNATIVE_DIR / "overlays" / "production"))


def test_compose_service_urls_come_from_a_template() -> None:
    spec = load_all()["reserve-stock"]
    assert service_url_from("http://{service}:{port}")(spec) == "http://inventory:3002"
    assert service_url_from(None)(spec).startswith("http://127.0.0.1:")


def test_shipping_functions_read_the_carrier_secret_by_reference() -> None:
    services = [doc for doc in load_manifests(KNATIVE_DIR / "overlays" / "production")
                if doc.get("kind") == "Service" and doc["apiVersion"].startswith("serving.knative.dev")
                and doc["metadata"]["labels"].get("fusioncommerce.dev/service") == "shipping"]
    assert services
    for service in services:
        env = {e["name"]: e for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["SHIPPING_CARRIER_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "fusion-shipping"
