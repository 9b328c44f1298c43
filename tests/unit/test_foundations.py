"""Pure foundations: money, configuration, cron schedules, the delivery contract, routes and backoff."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from fusion.binding import Event
from fusion.config import ConfigError, check_service_secrets, load_settings, to_sqlalchemy_url
from fusion.cron import Cron, CronError
from fusion.dataplane import Attempt, Verdict, dead_letter, judge
from fusion.kafka import security as kafka_security
from fusion.money import MoneyError, json_number, percent_of, to_decimal, to_minor
from fusion.registry import Delivery, Route


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [(19.99, "USD", 1999), ("0.1", "usd", 10), (1500, "JPY", 1500), ("1.234", "KWD", 1234), (0, "EUR", 0)],
)
def test_amounts_convert_exactly_to_minor_units(amount: object, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "problem"),
    [(10.5, "JPY", "decimal places"), (1.999, "USD", "decimal places"), (1, "XYZ", "unknown"),
     ("abc", "USD", "number"), (True, "USD", "number"), ("NaN", "USD", "finite")],
)
def test_bad_amounts_are_refused(amount: object, currency: str, problem: str) -> None:
    with pytest.raises(MoneyError, match=problem):
        to_minor(amount, currency)


def test_minor_units_back_to_decimals_and_percentages() -> None:
    assert to_decimal(1999, "USD") == Decimal("19.99")
    assert json_number(to_decimal(1500, "JPY")) == 1500 and json_number(to_decimal(1999, "USD")) == 19.99
    assert isinstance(json_number(to_decimal(1500, "USD")), int)  # whole amounts answer as integers
    assert percent_of(1999, Decimal("80")) == 1599  # 1599.2 rounds down
    assert percent_of(1999, Decimal("50")) == 1000  # 999.5 rounds half up


OIDC = {"OIDC_ISSUER": "https://id.example.com/realms/shop", "OIDC_AUDIENCE": "fusioncommerce",
        "DATABASE_URL": "postgresql://app:s3cret@db.internal:5432/shop", "KAFKA_BROKERS": "redpanda-prod:9092",
        "EVENTING_OIDC_ISSUER": "https://kubernetes.default.svc.cluster.local"}


def test_settings_defaults_follow_the_environment_table() -> None:
    assert load_settings({}).log_level == "debug"
    assert load_settings({"FUSION_ENV": "staging", **OIDC}).log_level == "info"
    production = load_settings({"FUSION_ENV": "production", "LOG_LEVEL": "ERROR", **OIDC})
    assert production.log_level == "error" and production.environment == "production"
    assert load_settings({}).kafka_brokers == "localhost:9092"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"FUSION_ENV": "prod"}, "FUSION_ENV"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"KAFKA_BROKERS": "nohost"}, "KAFKA_BROKERS"),
        ({"STRIPE_SECRET_KEY": "pk_test_1"}, "STRIPE_SECRET_KEY"),
        ({"ORDER_HOLD_SECONDS": "soon"}, "ORDER_HOLD_SECONDS"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"FUSION_ENV": "production", **{k: v for k, v in OIDC.items() if not k.startswith("OIDC")}},
         "OIDC_ISSUER and OIDC_AUDIENCE"),
        ({"FUSION_ENV": "staging", **{k: v for k, v in OIDC.items() if k != "OIDC_AUDIENCE"}}, "OIDC_AUDIENCE"),
        ({"FUSION_ENV": "production", **OIDC, "OIDC_ISSUER": "http://id.example.com"}, "https"),
    ],
)
def test_bad_settings_fail_with_the_variable_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(env)


@pytest.mark.parametrize(("env", "problem"), [
    ({k: v for k, v in OIDC.items() if k != "DATABASE_URL"}, "DATABASE_URL must be set"),
    ({**OIDC, "DATABASE_URL": "postgresql://postgres:postgres@localhost:5432/ecommerce"}, "DATABASE_URL is the public"),
    ({k: v for k, v in OIDC.items() if k != "KAFKA_BROKERS"}, "KAFKA_BROKERS must be set"),
])
def test_outside_development_nothing_falls_back_to_a_local_default(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings({"FUSION_ENV": "production", **env})


@pytest.mark.parametrize(("service", "env", "problem"), [
    ("payments", {}, "STRIPE_SECRET_KEY must be set"),
    ("payments", {"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_fusion_local"},
     "STRIPE_WEBHOOK_SECRET is the public development default"),
    ("shipping", {}, "SHIPPING_CARRIER_SECRET must be set"),
])
def test_a_service_refuses_to_start_without_its_secrets(service: str, env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        check_service_secrets(service, {"FUSION_ENV": "staging", **env})
    check_service_secrets(service, {"FUSION_ENV": "development"})
    check_service_secrets("catalog", {"FUSION_ENV": "production"})


def test_development_falls_back_to_the_local_issuer() -> None:
    local = load_settings({"FUSION_ISSUER_PORT": "8999"})
    assert (local.oidc_issuer, local.oidc_audience, local.oidc_scope_claim) == (
        "http://127.0.0.1:8999", "fusioncommerce", "scope")
    keycloak = load_settings({"FUSION_ENV": "production", **OIDC, "OIDC_SCOPE_CLAIM": "realm_access.roles"})
    assert keycloak.oidc_issuer == OIDC["OIDC_ISSUER"] and keycloak.oidc_scope_claim == "realm_access.roles"


def test_database_url_gets_the_psycopg_driver() -> None:
    assert to_sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert to_sqlalchemy_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_cron_matches_like_a_ping_source() -> None:
    every_five = Cron("*/5 * * * *")
    assert every_five.matches(datetime(2026, 1, 1, 10, 15))
    assert not every_five.matches(datetime(2026, 1, 1, 10, 16))
    weekday_mornings = Cron("0 8-9 * * 1-5")
    assert weekday_mornings.matches(datetime(2026, 11, 26, 8, 0))  # a Thursday
    assert not weekday_mornings.matches(datetime(2026, 11, 29, 8, 0))  # a Sunday
    assert Cron("0,30 * * * *").matches(datetime(2026, 1, 1, 0, 30))
    for bad in ("* * *", "61 * * * *", "*/0 * * * *", "a * * * *"):
        with pytest.raises(CronError):
            Cron(bad)


@pytest.mark.parametrize(
    ("status", "headers", "body", "verdict"),
    [
        (204, {}, b"", Verdict.DONE),
        (200, {}, b"", Verdict.DONE),
        (200, {"Content-Type": "text/plain"}, b"OK", Verdict.DEAD),
        (202, {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, b"{}", Verdict.REPLY),
        (200, {"ce-specversion": "1.0"}, b"{}", Verdict.DEAD),
        (500, {}, b"", Verdict.RETRY),
        (503, {}, b"", Verdict.RETRY),
        (404, {}, b"", Verdict.RETRY),
        (408, {}, b"", Verdict.RETRY),
        (409, {}, b"", Verdict.RETRY),
        (429, {}, b"", Verdict.RETRY),
        (None, {}, b"", Verdict.RETRY),
        (400, {}, b"", Verdict.DEAD),
        (401, {}, b"", Verdict.DEAD),
        (422, {}, b"", Verdict.DEAD),
        (302, {}, b"", Verdict.DEAD),
    ],
)
def test_responses_are_judged_as_the_knative_kafka_data_plane_does(
    status: int | None, headers: dict[str, str], body: bytes, verdict: Verdict
) -> None:
    assert judge(Attempt(status, headers, body)) is verdict


def test_dead_letters_carry_the_knative_error_extensions() -> None:
    event = Event({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}, b"{}")
    dead = dead_letter(event, "http://h/f", Attempt(500, {}, b"x" * 2000))
    assert dead.attributes["knativeerrordest"] == "http://h/f"
    assert dead.attributes["knativeerrorcode"] == "500"
    assert len(dead.attributes["knativeerrordata"]) == 1368  # base64 of the first 1 KiB
    timed_out = dead_letter(event, "http://h/f", Attempt(None, {}, b""))
    assert "knativeerrorcode" not in timed_out.attributes


def test_backoff_follows_the_kafka_dispatcher_formula() -> None:
    exponential = Delivery(retries=3, backoff="exponential", delay=0.5)
    assert [exponential.wait_before(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    linear = Delivery(retries=3, backoff="linear", delay=1.0)
    assert [linear.wait_before(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]


def test_routes_match_paths_and_methods() -> None:
    route = Route("GET", "/products/{id}")
    assert route.match("GET", "/products/42") == {"id": "42"}
    assert route.match("GET", "/products/42/") == {"id": "42"}
    assert route.match("POST", "/products/42") is None
    assert route.match("GET", "/products/42/label") is None
    assert str(route) == "GET /products/{id}"


@pytest.mark.parametrize(("env", "problem"), [
    ({"FUSION_ENV": "production"}, "must be sasl_ssl outside development"),
    ({"KAFKA_SECURITY_PROTOCOL": "carrier-pigeon"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}, "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM"),
])
def test_kafka_clients_refuse_plaintext_outside_development(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        kafka_security(env)


def test_kafka_clients_take_tls_and_scram_from_the_environment() -> None:
    assert kafka_security({}) == {"security.protocol": "plaintext"}
    deployed = kafka_security({"FUSION_ENV": "production", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                               "KAFKA_SASL_USERNAME": "relay", "KAFKA_SASL_PASSWORD": "s3cret",
                               "KAFKA_SSL_CA_LOCATION": "/etc/kafka-ca/ca.crt"})
    assert deployed == {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "relay",
                        "sasl.password": "s3cret", "ssl.ca.location": "/etc/kafka-ca/ca.crt"}


def test_deliveries_need_the_eventing_issuer_outside_development() -> None:
    with pytest.raises(ConfigError, match="EVENTING_OIDC_ISSUER"):
        load_settings({"FUSION_ENV": "production", **{k: v for k, v in OIDC.items() if k != "EVENTING_OIDC_ISSUER"}})
