"""Every environment variable the platform reads, declared once: name, default per environment, meaning.

`fusion config` prints them with the values in effect (secrets masked); the README's settings table
is rendered from here (a test keeps the two equal, and fails when code reads a variable that is not
declared). `fusion.config` takes its defaults from here and validates the values at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

REQUIRED = "required"  # outside development: the platform refuses to start without it
NONE = ""


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    development: str = NONE  # default in development ("" = unset)
    deployed: str | None = None  # default in staging/production; None = as in development
    secret: bool = False
    part: str = "every function"  # who reads it

    @property
    def outside_development(self) -> str:
        return self.development if self.deployed is None else self.deployed


VARIABLES: tuple[Variable, ...] = (
    Variable("FUSION_ENV", "development, staging or production; set explicitly in every deployment",
             "development", deployed=REQUIRED, part="every process"),
    Variable("LOG_LEVEL", "debug, info, warn or error", "debug", deployed="info (staging), warn (production)",
             part="every process"),
    Variable("DATABASE_URL", "PostgreSQL, postgresql://…; `fusion dev` starts an embedded one when unset",
             "postgresql://postgres:postgres@localhost:5432/ecommerce", deployed=REQUIRED, secret=True,
             part="every process"),
    Variable("DB_POOL_SIZE", "connections per process are twice this", "10"),
    Variable("KAFKA_BROKERS", "host:port[,host:port…] of Redpanda/Kafka; `fusion dev` starts Tansu when unset",
             "localhost:9092", deployed=REQUIRED, part="relay, router, `fusion topics`"),
    Variable("KAFKA_SECURITY_PROTOCOL", "plaintext, ssl, sasl_plaintext or sasl_ssl (required outside development)",
             "plaintext", deployed="sasl_ssl", part="relay, router, `fusion topics`"),
    Variable("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN", "SCRAM-SHA-512",
             part="relay, router, `fusion topics`"),
    Variable("KAFKA_SASL_USERNAME", "the SASL user (from the fusion-kafka Secret in the cluster)", NONE,
             deployed=REQUIRED, part="relay, router, `fusion topics`"),
    Variable("KAFKA_SASL_PASSWORD", "the SASL password", NONE, deployed=REQUIRED, secret=True,
             part="relay, router, `fusion topics`"),
    Variable("KAFKA_SSL_CA_LOCATION", "a CA bundle file for the brokers' certificates", NONE,
             part="relay, router, `fusion topics`"),
    Variable("STRIPE_SECRET_KEY", "sk_… or rk_…; `fusion dev` runs localstripe when unset", "sk_test_fusion_local",
             deployed=REQUIRED, secret=True, part="payments"),
    Variable("STRIPE_WEBHOOK_SECRET", "whsec_…, verifies Stripe's webhook signatures", "whsec_fusion_local",
             deployed=REQUIRED, secret=True, part="payments"),
    Variable("STRIPE_API_BASE", "another Stripe API address (localstripe)", NONE, part="payments, storefront"),
    Variable("STRIPE_PUBLISHABLE_KEY", "pk_…, the key the storefront's pages give Stripe.js", "pk_test_fusion_local",
             deployed=REQUIRED, part="storefront"),
    Variable("STRIPE_JS_URL", "where the pages load Stripe.js from (https:// outside development)",
             "<STRIPE_API_BASE>/js.stripe.com/v3/ (localstripe's stand-in), else https://js.stripe.com/v3/",
             deployed="https://js.stripe.com/v3/", part="storefront"),
    Variable("STRIPE_AUTO_CONFIRM", "true: confirm intents with a test card server-side (development only)",
             NONE, part="payments"),
    Variable("PAYMENTS_RECONCILE_AFTER_SECONDS", "age of a pending payment before it is checked with Stripe",
             "60", part="payments"),
    Variable("SHIPPING_CARRIER_SECRET", "shared secret carriers send as X-Carrier-Secret", NONE,
             deployed=REQUIRED, secret=True, part="shipping"),
    Variable("SHIPPING_PUBLIC_URL", "base of label URLs", "http://127.0.0.1:<shipping port>", part="shipping"),
    Variable("SHIPPING_SENDER_ADDRESS", "the sender printed on labels (as it was when the order shipped)",
             "FusionCommerce Warehouse…", part="shipping"),
    Variable("PUBLIC_BASE_URL", "the storefront's public address, used in notifications", "http://127.0.0.1"),
    Variable("ORDER_HOLD_SECONDS", "how long a confirmed order waits for its payment before it is cancelled",
             "900", part="orders"),
    Variable("CUSTOMER_OPEN_ORDERS", "unpaid storefront orders one customer may hold at once", "10",
             part="orders"),
    Variable("CUSTOMER_OPEN_UNITS", "unpaid units one customer may hold at once", "500", part="orders"),
    Variable("CATALOG_URL", "where orders, inventory and group buying ask the catalog for a product they have not "
             "heard of yet (GET /products?sku=…); in the cluster the catalog's cluster-local address, from the "
             "manifests", "http://127.0.0.1:<catalog port>", deployed=REQUIRED,
             part="orders, inventory, group-commerce"),
    Variable("CATALOG_TIMEOUT_SECONDS", "how long a catalog lookup may take before the request answers 503",
             "3", part="orders, inventory, group-commerce"),
    Variable("SEAT_HOLD_SECONDS", "how long a campaign seat waits for its card to be authorized before it is "
             "freed", "900", part="group-commerce"),
    Variable("CUSTOMER_OPEN_SEATS", "open campaigns one customer may hold seats in at once", "5",
             part="group-commerce"),
    Variable("CAMPAIGN_MAX_DAYS", "the longest a campaign may run: its seats' card authorizations must still be "
             "capturable at its deadline (Stripe keeps them 7 days)", "6", part="group-commerce"),
    Variable("OIDC_ISSUER", "the token issuer (https:// outside development); `fusion dev` runs a local one",
             "http://127.0.0.1:<FUSION_ISSUER_PORT>", deployed=REQUIRED, part="every process"),
    Variable("OIDC_AUDIENCE", "the audience tokens must carry", "fusioncommerce", deployed=REQUIRED,
             part="every process"),
    Variable("EVENTING_OIDC_ISSUER", "who signs the event plane's delivery tokens: the cluster's service-account "
             "issuer (Knative Eventing's sender identity), locally the local issuer",
             "http://127.0.0.1:<FUSION_ISSUER_PORT>", deployed=REQUIRED, part="every function"),
    Variable("OIDC_SCOPE_CLAIM", "the claim with the staff scopes, dotted for nested ones (realm_access.roles)",
             "scope"),
    Variable("STOREFRONT_OIDC_CLIENT_ID", "the storefront's OIDC client (public, PKCE S256) that browsers sign "
             "in with", "fusioncommerce-storefront", deployed=REQUIRED, part="storefront, local issuer"),
    Variable("STOREFRONT_ORIGIN", "the public origin of the pages (scheme://host[:port]); the local issuer "
             "redirects only to its /auth/callback and answers CORS only for it (a real provider keeps these in "
             "its client's settings, see docs/operations.md)",
             "http://127.0.0.1:<8000 + FUSION_PORT_OFFSET>", deployed=NONE, part="local issuer"),
    Variable("THREADS", "gunicorn threads per function process (functions-framework)", "32 under `fusion dev`",
             deployed="8"),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "an OTLP/HTTP collector, e.g. http://collector:4318: traces are exported "
             "there (spans of requests, publishes and handlers); unset, no traces are recorded", NONE,
             part="every process"),
    Variable("FUSION_PORT_OFFSET", "shifts the gateway (8000) and every function port (3000-3007) by this much", "0",
             part="fusion dev"),
    Variable("FUSION_PG_PORT", "embedded PostgreSQL's port (a free one is picked when the default is taken)",
             "5432", part="fusion dev"),
    Variable("FUSION_BROKER_PORT", "embedded broker's port (a free one is picked when the default is taken)",
             "9092", part="fusion dev"),
    Variable("FUSION_STRIPE_PORT", "localstripe's port (a free one is picked when the default is taken)", "8420",
             part="fusion dev"),
    Variable("FUSION_ISSUER_PORT", "local OIDC issuer's port (a free one is picked when the default is taken)",
             "8430", part="fusion dev, fusion issuer"),
    Variable("FUSION_STATE_DIR", "where the local platform keeps its data, logs and issuer key", ".fusion/",
             part="fusion dev, token, reset"),
    Variable("FUSION_ROUTER_READY_FILE", "a file the router writes once its consumer groups are assigned", NONE,
             part="router"),
    Variable("FUSION_SCHEDULE_INTERVAL", "seconds between scheduled runs instead of their cron (tests)", NONE,
             part="router"),
    Variable("FUSION_SERVICE_URL_TEMPLATE", "where the router, the gateway and the operations service reach a "
             "service, e.g. http://{service}:{port}", NONE, part="router, gateway, operations"),
    Variable("FUSION_DELIVER_TWICE", "true: the router delivers every event twice and localstripe sends every "
             "webhook twice, as an at-least-once transport may (tests of idempotency; development only)", NONE,
             part="router, localstripe"),
    Variable("FUSION_METRICS", "on or off; off: requests, deliveries, publishes and saga stages are not counted "
             "(to measure what counting costs; /metrics still answers)", "on", part="every process"),
    Variable("PROMETHEUS_MULTIPROC_DIR", "a directory where every gunicorn worker writes its metrics, so /metrics "
             "adds them up; emptied before the process starts (`fusion dev`: one per service under .fusion/metrics/)",
             NONE, part="every function"),
    Variable("FUSION_ROUTER_WAKE_ADDRESS", "host:port (UDP) where the local router hears which topics just received "
             "records; set, the router pauses quiet consumers and the relay, `fusion dlq replay` and the operations "
             "service wake it (`fusion dev`: the router's /metrics port)", NONE,
             part="router, relay, operations, fusion dlq"),
    Variable("FUSION_METRICS_ADDRESS", "host:port where the relay or the router serves /metrics (`fusion dev`: "
             "127.0.0.1, ports 3010 and 3011 shifted by FUSION_PORT_OFFSET); unset: not served", NONE,
             deployed="0.0.0.0:9400 (relay)", part="relay, router"),
    Variable("FUSION_TRIGGER_NAMESPACE", "the namespace whose Triggers' consumer-group lag the relay exports "
             "(the Knative Kafka Broker's groups, knative-trigger-<namespace>-<trigger>)", NONE,
             deployed="the relay's namespace", part="relay"),
    Variable("OPERATIONS_PROMETHEUS_URL", "a Prometheus HTTP API the operations service reads the platform's "
             "status from; unset: each local process's /health and /metrics (`fusion dev`)", NONE,
             deployed="the cluster's Prometheus, from the manifests", part="operations"),
    Variable("OPERATIONS_PROMETHEUS_SELECTOR", "label matchers every series the operations service reads from "
             "OPERATIONS_PROMETHEUS_URL must carry, so one Prometheus shared by the environments gives each its "
             "own figures", NONE, deployed="`namespace=\"…\"`, the environment's, from the manifests",
             part="operations"),
    Variable("SMOKE_STAFF_TOKEN", "the staff token `fusion smoke` presents (catalog:write)", NONE, secret=True,
             part="fusion smoke"),
    Variable("SMOKE_CUSTOMER_TOKEN", "the customer token `fusion smoke` orders with", NONE, secret=True,
             part="fusion smoke"),
)
BY_NAME = {variable.name: variable for variable in VARIABLES}


def default_of(name: str) -> str:
    """The development default of a declared variable."""
    return BY_NAME[name].development


def masked(variable: Variable, value: str) -> str:
    if not value or not variable.secret:
        return value
    return f"{value[:4]}… (set, {len(value)} characters)" if len(value) > 8 else "(set)"


def in_effect(env: Mapping[str, str]) -> list[tuple[Variable, str]]:
    """Each variable with the value the environment gives it (secrets masked), or its default."""
    rows = []
    for variable in VARIABLES:
        given = env.get(variable.name)
        value = masked(variable, given) if given else f"{variable.development or '-'} (default)"
        rows.append((variable, value))
    return rows


def markdown_table() -> str:
    lines = ["| variable | development default | staging / production | read by | meaning |",
             "|---|---|---|---|---|"]
    for v in VARIABLES:
        deployed = v.outside_development
        lines.append(f"| `{v.name}` | {_cell(v.development)} | {_cell(deployed)} | {v.part} | {v.meaning} |")
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    if not value:
        return "-"
    return "**required**" if value == REQUIRED else f"`{value}`" if " " not in value else value
