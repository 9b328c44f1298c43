"""The cluster (Triggers, PingSources) and the registry (what the local router uses) route alike."""

from __future__ import annotations

from deploy_support import find, mutated

from fusion.knative.environments import Environment
from fusion.knative.eventing import trigger_name
from fusion.knative.render import KNATIVE_DIR, environment_path
from fusion.knative.resources import Manifest
from fusion.knative.routing import registry_routes, registry_schedules, routes_in, schedule_routes, trigger_routes
from fusion.registry import FunctionSpec
from fusion.topics import topic


def test_triggers_route_exactly_what_the_registry_declares(documents: list[Manifest],
                                                             specs: list[FunctionSpec]) -> None:
    expected = {spec.name: {topic(t).type for t in spec.topics} for spec in specs if spec.topics}
    assert registry_routes(specs) == expected
    assert trigger_routes(documents) == expected


def test_ping_sources_fire_what_the_registry_schedules(documents: list[Manifest], specs: list[FunctionSpec]) -> None:
    assert schedule_routes(documents) == registry_schedules(specs)
    assert registry_schedules(specs), "the platform has scheduled functions"


def test_routes_in_reads_a_committed_environment(env: Environment, documents: list[Manifest]) -> None:
    assert routes_in(KNATIVE_DIR / environment_path(env)) == trigger_routes(documents)


def test_a_missing_trigger_shows_as_a_routing_difference(documents: list[Manifest],
                                                          specs: list[FunctionSpec]) -> None:
    changed = mutated(documents)
    handler = next(spec for spec in specs if spec.topics)
    changed.remove(find(changed, "Trigger", trigger_name(handler.name, handler.topics[0])))
    assert trigger_routes(changed) != registry_routes(specs)


def test_notification_triggers_are_not_function_routes(documents: list[Manifest]) -> None:
    assert "n8n" not in trigger_routes(documents)
