"""What every function owes the platform: the CloudEvents conformance cases are accepted by every
event function, handlers answer with an empty body, /health reports the database."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cloudevent_cases import all_cases
from flask.testing import FlaskClient

from fusion import config, db
from fusion.registry import FunctionSpec, load_all

EVENT_FUNCTIONS = [spec for spec in load_all().values() if spec.kind != "http"]


@pytest.mark.parametrize("spec", EVENT_FUNCTIONS, ids=lambda s: s.name)
def test_every_event_function_accepts_every_conformance_case(
    client: Callable[[str], FlaskClient], spec: FunctionSpec
) -> None:
    service = client(spec.service)
    for case in all_cases():
        response = service.post(spec.event_path, headers=case.headers, data=case.body)
        assert response.status_code == 204, (case.name, response.get_data(as_text=True))
        assert response.get_data() == b""


@pytest.mark.parametrize("spec", EVENT_FUNCTIONS, ids=lambda s: s.name)
def test_malformed_deliveries_are_refused_with_400_so_they_are_dead_lettered(
    client: Callable[[str], FlaskClient], spec: FunctionSpec
) -> None:
    service = client(spec.service)
    response = service.post(spec.event_path, data=b"{}", content_type="application/json")
    assert response.status_code == 400
    batch = service.post(spec.event_path, data=b"[]", content_type="application/cloudevents-batch+json")
    assert batch.status_code == 400


def test_health_is_503_when_the_database_is_unreachable(client: Callable[[str], FlaskClient], database: str) -> None:
    catalog = client("catalog")
    os.environ["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/none"
    config.settings.cache_clear()
    db.reset_pool()
    try:
        response = catalog.get("/health")
        assert response.status_code == 503
        assert response.get_json()["status"] == "unavailable"
        assert catalog.get("/products").status_code == 503
    finally:
        os.environ["DATABASE_URL"] = database
        config.settings.cache_clear()
        db.reset_pool()
    assert catalog.get("/health").status_code == 200
