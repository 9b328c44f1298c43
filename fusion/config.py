"""Configuration from the environment, checked once at start with clear errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from fusion.variables import default_of

ENVIRONMENTS = ("development", "staging", "production")
LOG_LEVELS = ("debug", "info", "warn", "error")
DEFAULT_LOG_LEVEL = {"development": "debug", "staging": "info", "production": "warn"}
DEFAULT_DATABASE_URL = default_of("DATABASE_URL")
DEFAULT_KAFKA_BROKERS = default_of("KAFKA_BROKERS")
DEFAULT_ORDER_HOLD_SECONDS = int(default_of("ORDER_HOLD_SECONDS"))
DEFAULT_ISSUER_PORT = int(default_of("FUSION_ISSUER_PORT"))  # the local OIDC issuer `fusion dev` runs
DEFAULT_AUDIENCE = default_of("OIDC_AUDIENCE")
# Secrets a service cannot run without outside development; none may keep its development default.
SERVICE_SECRETS = {"payments": ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"), "shipping": ("SHIPPING_CARRIER_SECRET",)}


class ConfigError(ValueError):
    """A setting in the environment has a value the platform cannot use."""


@dataclass(frozen=True)
class Settings:
    environment: str
    log_level: str
    database_url: str
    kafka_brokers: str
    stripe_secret_key: str
    stripe_webhook_secret: str
    stripe_api_base: str | None
    public_base_url: str
    order_hold_seconds: int
    db_pool_size: int
    oidc_issuer: str
    oidc_audience: str
    oidc_scope_claim: str
    eventing_oidc_issuer: str  # who signs the event plane's delivery tokens
    customer_open_orders: int  # unpaid storefront orders one customer may hold at once
    customer_open_units: int  # and units across them

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.database_url)

    @property
    def libpq_url(self) -> str:
        return to_libpq_url(self.database_url)


def to_sqlalchemy_url(database_url: str) -> str:
    """`postgresql://…` as given by operators, with the psycopg 3 driver named for SQLAlchemy."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ConfigError(f"DATABASE_URL must start with postgresql://, got {database_url[:30]!r}")


def to_libpq_url(database_url: str) -> str:
    """The URL as psycopg takes it (no SQLAlchemy driver name)."""
    return "postgresql://" + to_sqlalchemy_url(database_url).removeprefix("postgresql+psycopg://")


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number; got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1; got {value}")
    return value


def _brokers(env: Mapping[str, str]) -> str:
    value = env.get("KAFKA_BROKERS", "").strip() or DEFAULT_KAFKA_BROKERS
    for broker in value.split(","):
        host, _, port = broker.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"KAFKA_BROKERS must be host:port[,host:port…]; got {value!r}")
    return value


def local_issuer_url(env: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{env.get('FUSION_ISSUER_PORT', '').strip() or DEFAULT_ISSUER_PORT}"


def _oidc(env: Mapping[str, str], environment: str) -> tuple[str, str]:
    """Issuer and audience; only development may fall back to the local issuer."""
    issuer = env.get("OIDC_ISSUER", "").strip().rstrip("/")
    audience = env.get("OIDC_AUDIENCE", "").strip()
    if environment != "development":
        missing = [name for name, value in (("OIDC_ISSUER", issuer), ("OIDC_AUDIENCE", audience)) if not value]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} must be set outside development (FUSION_ENV={environment})")
        if not issuer.startswith("https://"):
            raise ConfigError(f"OIDC_ISSUER must be an https:// URL outside development; got {issuer!r}")
    return issuer or local_issuer_url(env), audience or DEFAULT_AUDIENCE


def _eventing_issuer(env: Mapping[str, str], environment: str) -> str:
    """The issuer of delivery tokens: the cluster's service-account issuer, or locally the local issuer."""
    issuer = env.get("EVENTING_OIDC_ISSUER", "").strip().rstrip("/")
    if not issuer and environment != "development":
        raise ConfigError(f"EVENTING_OIDC_ISSUER must be set outside development (FUSION_ENV={environment})")
    return issuer or local_issuer_url(env)


def _deployed_value(env: Mapping[str, str], name: str, environment: str) -> None:
    """Outside development a setting must be given, and not as the public development default."""
    value = env.get(name, "").strip()
    if environment == "development":
        return
    if not value:
        raise ConfigError(f"{name} must be set outside development (FUSION_ENV={environment})")
    if value == default_of(name):
        raise ConfigError(f"{name} is the public development default; set a real value (FUSION_ENV={environment})")


def check_service_secrets(service: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse to start a service outside development without the secrets it needs."""
    env = os.environ if env is None else env
    environment = _choice(env, "FUSION_ENV", ENVIRONMENTS, "development")
    for name in SERVICE_SECRETS.get(service, ()):
        _deployed_value(env, name, environment)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    environment = _choice(env, "FUSION_ENV", ENVIRONMENTS, "development")
    for name in ("DATABASE_URL", "KAFKA_BROKERS"):
        _deployed_value(env, name, environment)
    database_url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    to_sqlalchemy_url(database_url)
    stripe_key = env.get("STRIPE_SECRET_KEY", "").strip() or default_of("STRIPE_SECRET_KEY")
    if not stripe_key.startswith(("sk_", "rk_")):
        raise ConfigError("STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…)")
    issuer, audience = _oidc(env, environment)
    eventing_issuer = _eventing_issuer(env, environment)
    return Settings(
        environment=environment,
        log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS, DEFAULT_LOG_LEVEL[environment]),
        database_url=database_url,
        kafka_brokers=_brokers(env),
        stripe_secret_key=stripe_key,
        stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", "").strip() or default_of("STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=env.get("STRIPE_API_BASE", "").strip() or None,
        public_base_url=(env.get("PUBLIC_BASE_URL", "").strip() or default_of("PUBLIC_BASE_URL")).rstrip("/"),
        order_hold_seconds=_positive_int(env, "ORDER_HOLD_SECONDS", DEFAULT_ORDER_HOLD_SECONDS),
        db_pool_size=_positive_int(env, "DB_POOL_SIZE", int(default_of("DB_POOL_SIZE"))),
        oidc_issuer=issuer,
        oidc_audience=audience,
        oidc_scope_claim=env.get("OIDC_SCOPE_CLAIM", "").strip() or default_of("OIDC_SCOPE_CLAIM"),
        eventing_oidc_issuer=eventing_issuer,
        customer_open_orders=_positive_int(env, "CUSTOMER_OPEN_ORDERS", int(default_of("CUSTOMER_OPEN_ORDERS"))),
        customer_open_units=_positive_int(env, "CUSTOMER_OPEN_UNITS", int(default_of("CUSTOMER_OPEN_UNITS"))),
    )


@cache
def settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
