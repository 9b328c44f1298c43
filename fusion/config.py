"""Configuration from the environment, checked once at start with clear errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from fusion.variables import default_of

ENVIRONMENTS = ("development", "staging", "production")
LOG_LEVELS = ("debug", "info", "warn", "error")
DEFAULT_LOG_LEVEL = {"development": "debug", "staging": "info", "production": "warn"}
DEFAULT_DATABASE_URL = default_of("DATABASE_URL")
DEFAULT_KAFKA_BROKERS = default_of("KAFKA_BROKERS")
DEFAULT_ORDER_HOLD_SECONDS = int(default_of("ORDER_HOLD_SECONDS"))
DEFAULT_ISSUER_PORT = int(default_of("FUSION_ISSUER_PORT"))  # the local OIDC issuer `fusion dev` runs
DEFAULT_AUDIENCE = default_of("OIDC_AUDIENCE")
LOCAL_GATEWAY_PORT = 8000  # where `fusion dev` serves the pages and the API, shifted by FUSION_PORT_OFFSET
# Secrets a service cannot run without outside development; none may keep its development default.
SERVICE_SECRETS = {"payments": ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"), "shipping": ("SHIPPING_CARRIER_SECRET",),
                   "storefront": ("STRIPE_PUBLISHABLE_KEY",)}
# Settings a service cannot run without outside development (the manifests render them into its env).
SERVICE_SETTINGS = {"orders": ("CATALOG_URL",), "group-commerce": ("CATALOG_URL",), "inventory": ("CATALOG_URL",),
                    "storefront": ("STOREFRONT_OIDC_CLIENT_ID",),
                    "operations": ("OPERATIONS_PROMETHEUS_URL", "OPERATIONS_PROMETHEUS_SELECTOR")}


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
    seat_hold_seconds: int  # a campaign seat waits this long for its card authorization
    customer_open_seats: int  # open campaigns one customer may hold seats in at once
    campaign_max_days: int  # the longest a campaign may run (card authorizations expire)
    catalog_url: str | None  # where to look a product up; None: the local catalog (development only)
    catalog_timeout_seconds: float  # how long one lookup may take
    storefront_oidc_client_id: str | None  # the browsers' OIDC client; None: not set outside development
    storefront_origin: str  # the public origin of the pages
    metrics_on: bool  # FUSION_METRICS

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


def _positive_seconds(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name, "").strip() or default_of(name)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds; got {raw!r}") from None
    if not 0 < value <= 60:
        raise ConfigError(f"{name} must be more than 0 and at most 60 seconds; got {raw!r}")
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL; got {value!r}")
    return value or None


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


def storefront_origin(env: Mapping[str, str]) -> str:
    """STOREFRONT_ORIGIN, or in development the local gateway's address."""
    value = env.get("STOREFRONT_ORIGIN", "").strip().rstrip("/")
    if not value:
        offset = int(env.get("FUSION_PORT_OFFSET", "").strip() or 0)
        return f"http://127.0.0.1:{LOCAL_GATEWAY_PORT + offset}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
        raise ConfigError(f"STOREFRONT_ORIGIN must be an origin, scheme://host[:port] and nothing after; got {value!r}")
    return value


def _storefront_client_id(env: Mapping[str, str], environment: str) -> str | None:
    """The browsers' OIDC client: the provider's client id; development defaults to the local issuer's one."""
    value = env.get("STOREFRONT_OIDC_CLIENT_ID", "").strip()
    if value or environment != "development":
        return value or None  # the storefront refuses to sign anyone in without it
    return default_of("STOREFRONT_OIDC_CLIENT_ID")


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
    """Refuse to start a service outside development without the secrets and settings it needs."""
    env = os.environ if env is None else env
    environment = _choice(env, "FUSION_ENV", ENVIRONMENTS, "development")
    for name in SERVICE_SECRETS.get(service, ()):
        _deployed_value(env, name, environment)
    missing = [name for name in SERVICE_SETTINGS.get(service, ()) if not env.get(name, "").strip()]
    if missing and environment != "development":
        raise ConfigError(f"{' and '.join(missing)} must be set outside development for {service} "
                          f"(FUSION_ENV={environment})")


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
        seat_hold_seconds=_positive_int(env, "SEAT_HOLD_SECONDS", int(default_of("SEAT_HOLD_SECONDS"))),
        customer_open_seats=_positive_int(env, "CUSTOMER_OPEN_SEATS", int(default_of("CUSTOMER_OPEN_SEATS"))),
        campaign_max_days=_positive_int(env, "CAMPAIGN_MAX_DAYS", int(default_of("CAMPAIGN_MAX_DAYS"))),
        catalog_url=_url(env, "CATALOG_URL"),
        catalog_timeout_seconds=_positive_seconds(env, "CATALOG_TIMEOUT_SECONDS"),
        storefront_oidc_client_id=_storefront_client_id(env, environment),
        storefront_origin=storefront_origin(env),
        metrics_on=metrics_on(env),
    )


@cache
def settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()


def metrics_on(env: Mapping[str, str] | None = None) -> bool:
    """FUSION_METRICS: whether requests, deliveries and saga stages are counted."""
    return _choice(os.environ if env is None else env, "FUSION_METRICS", ("on", "off"), "on") == "on"


def deliver_twice(env: Mapping[str, str] | None = None) -> bool:
    """FUSION_DELIVER_TWICE: the local transport duplicates every event and webhook (development only)."""
    env = os.environ if env is None else env
    wanted = env.get("FUSION_DELIVER_TWICE", "").strip().lower() == "true"
    environment = _choice(env, "FUSION_ENV", ENVIRONMENTS, "development")
    if wanted and environment != "development":
        raise ConfigError(f"FUSION_DELIVER_TWICE is for development only (FUSION_ENV={environment})")
    return wanted


@dataclass(frozen=True)
class BrowserStripe:
    """What the storefront's pages give Stripe.js: the publishable key and where the script comes from."""

    publishable_key: str
    js_url: str

    @property
    def origin(self) -> str:
        """scheme://host[:port] of Stripe.js, for the pages' Content-Security-Policy."""
        scheme, _, rest = self.js_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


STRIPE_JS_URL = "https://js.stripe.com/v3/"


def browser_stripe(env: Mapping[str, str] | None = None) -> BrowserStripe:
    """STRIPE_PUBLISHABLE_KEY and STRIPE_JS_URL; locally localstripe serves a Stripe.js stand-in."""
    env = os.environ if env is None else env
    environment = _choice(env, "FUSION_ENV", ENVIRONMENTS, "development")
    _deployed_value(env, "STRIPE_PUBLISHABLE_KEY", environment)
    key = env.get("STRIPE_PUBLISHABLE_KEY", "").strip() or default_of("STRIPE_PUBLISHABLE_KEY")
    if not key.startswith("pk_"):
        raise ConfigError(f"STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_…); got {key[:8]!r}…")
    api_base = env.get("STRIPE_API_BASE", "").strip().rstrip("/")
    local_default = f"{api_base}/js.stripe.com/v3/" if api_base and environment == "development" else STRIPE_JS_URL
    js_url = _url(env, "STRIPE_JS_URL") or local_default
    if environment != "development" and not js_url.startswith("https://"):
        raise ConfigError(f"STRIPE_JS_URL must be an https:// URL outside development; got {js_url!r}")
    return BrowserStripe(publishable_key=key, js_url=js_url if js_url.endswith("/") else js_url + "/")
