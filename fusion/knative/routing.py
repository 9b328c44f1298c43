"""Routing as the manifests state it, and as the registry declares it: the two must agree.

`trigger_routes` reads rendered Triggers (what Knative Eventing will do in the cluster);
`registry_routes` reads the declarations (what the local router does on a laptop).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fusion.knative.render import load_manifests
from fusion.knative.resources import Manifest
from fusion.registry import FunctionSpec
from fusion.topics import PING_TYPE, ping_source_address, topic

KSVC_API = "serving.knative.dev/v1"


def _subscriber_ksvc(trigger: Manifest) -> str | None:
    reference = trigger.get("spec", {}).get("subscriber", {}).get("ref", {})
    if reference.get("apiVersion") == KSVC_API and reference.get("kind") == "Service":
        return str(reference["name"])
    return None


def _filter(trigger: Manifest) -> dict[str, str]:
    attributes: dict[str, str] = trigger.get("spec", {}).get("filter", {}).get("attributes", {})
    return attributes


def triggers(documents: Iterable[Manifest]) -> list[Manifest]:
    return [doc for doc in documents if doc.get("kind") == "Trigger"]


def trigger_routes(documents: Iterable[Manifest]) -> dict[str, set[str]]:
    """Function name -> the CloudEvent types its Triggers deliver to it (schedule ticks left out)."""
    routes: dict[str, set[str]] = {}
    for trigger in triggers(documents):
        function = _subscriber_ksvc(trigger)
        event_type = _filter(trigger).get("type")
        if function is not None and event_type is not None and event_type != PING_TYPE:
            routes.setdefault(function, set()).add(event_type)
    return routes


def schedule_routes(documents: Iterable[Manifest]) -> dict[str, str]:
    """Function name -> cron schedule, joining each PingSource to the Trigger that filters on its source."""
    docs = list(documents)
    schedules = {
        ping_source_address(doc["metadata"]["namespace"], doc["metadata"]["name"]): str(doc["spec"]["schedule"])
        for doc in docs
        if doc.get("kind") == "PingSource"
    }
    routes: dict[str, str] = {}
    for trigger in triggers(docs):
        attributes, function = _filter(trigger), _subscriber_ksvc(trigger)
        if attributes.get("type") == PING_TYPE and function and attributes.get("source") in schedules:
            routes[function] = schedules[attributes["source"]]
    return routes


def registry_routes(specs: Iterable[FunctionSpec]) -> dict[str, set[str]]:
    """Function name -> the CloudEvent types it declares it handles."""
    return {spec.name: {topic(t).type for t in spec.topics} for spec in specs if spec.topics}


def registry_schedules(specs: Iterable[FunctionSpec]) -> dict[str, str]:
    return {spec.name: spec.schedule for spec in specs if spec.kind == "scheduled" and spec.schedule}


def routes_in(directory: Path) -> dict[str, set[str]]:
    """`trigger_routes` of the manifests committed in an environment folder, e.g. knative/overlays/production."""
    return trigger_routes(load_manifests(directory))
