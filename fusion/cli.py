"""`fusion`: the command behind the Makefile — run the platform, migrate, relay, route, operate."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusion.config import ConfigError

if TYPE_CHECKING:
    from fusion.local.issuer import DeliveryTokens
    from fusion.relay import OutboxRelay

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _dev(args: argparse.Namespace) -> int:
    from fusion.local.platform import run

    return run(PROJECT_ROOT, empty=args.empty)


def _reset(args: argparse.Namespace) -> int:
    """Remove the local state (database, logs, issuer key), so the next `fusion dev` starts fresh."""
    import shutil

    target = state_dir()
    if not target.exists():
        print(f"nothing to remove: {target} does not exist")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"fusion reset removes {target}; run it in a terminal or pass --yes", file=sys.stderr)
            return 2
        answer = input(f"remove {target} and every order, product and key in it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    if (target / "postgres" / "postmaster.pid").exists():
        print(f"{target} is in use by a running fusion dev; stop it first", file=sys.stderr)
        return 1
    shutil.rmtree(target)
    print(f"removed {target}; the next fusion dev starts fresh")
    return 0


def _config(args: argparse.Namespace) -> int:
    from fusion.variables import in_effect, markdown_table

    if args.markdown:
        print(markdown_table(), end="")
        return 0
    rows = in_effect(os.environ)
    width = max(len(variable.name) for variable, _ in rows) + 2
    for variable, value in rows:
        print(f"{variable.name:<{width}}{value:<44} {variable.meaning}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from fusion import migrate

    if args.action == "up":
        migrate.upgrade_each_service()
        print("migrations applied")
    elif args.action == "down":
        if not args.target:
            print("fusion migrate down needs a service (one step back) or a revision, e.g. "
                  "`fusion migrate down orders` or `fusion migrate down base`", file=sys.stderr)
            return 2
        target = f"{args.target}@-1" if args.target in _service_branches() else args.target
        migrate.downgrade(target)
        print(f"downgraded to {target}")
    for branch, current, head in migrate.status():
        state = "up to date" if current == head else f"behind (head {head})"
        print(f"{branch:<16}{current or '-':<10}{state}")
    return 0


def _service_branches() -> set[str]:
    from fusion.registry import services

    return set(services())


def _relay(args: argparse.Namespace) -> int:
    from fusion.config import settings
    from fusion.registry import services
    from fusion.relay import OutboxRelay
    from fusion.uow import schema_of

    config = settings()
    _log_as("relay")
    relay = OutboxRelay(config.database_url, config.kafka_brokers, [schema_of(s) for s in services()])
    if args.once:
        print(f"published {relay.publish_pending()} events")
        relay.close()
        return 0
    _serve_relay_metrics(relay)
    return _run_until_signal(relay.run)


def _serve_relay_metrics(relay: OutboxRelay) -> None:
    """/metrics on FUSION_METRICS_ADDRESS: the outboxes and, with FUSION_TRIGGER_NAMESPACE, the Triggers' lag."""
    from fusion import metrics
    from fusion.knative.eventing import handler_consumer_groups
    from fusion.registry import load_all
    from fusion.relay import register_metrics

    namespace = os.environ.get("FUSION_TRIGGER_NAMESPACE", "").strip()
    groups = handler_consumer_groups(list(load_all().values()), namespace) if namespace else {}
    register_metrics(relay, groups)
    metrics.serve_metrics()


def _router(args: argparse.Namespace) -> int:
    from fusion import metrics
    from fusion.config import deliver_twice, settings
    from fusion.registry import load_all
    from fusion.router import Router, service_url_from
    from fusion.wakeup import wake_address

    _log_as("router")
    interval = float(os.environ.get("FUSION_SCHEDULE_INTERVAL", "0")) or None
    base_url = service_url_from(os.environ.get("FUSION_SERVICE_URL_TEMPLATE"))
    router = Router(list(load_all().values()), settings().kafka_brokers, base_url=base_url,
                    schedule_interval=interval, tokens=_delivery_tokens(), deliver_twice=deliver_twice(),
                    wake_address=wake_address())
    router.start()
    router.register_metrics()
    metrics.serve_metrics()
    if not router.wait_until_assigned(60):
        print("warning: some consumer groups were not assigned within 60 s", file=sys.stderr)
    ready_file = os.environ.get("FUSION_ROUTER_READY_FILE")
    if ready_file:
        Path(ready_file).write_text("ready\n")
    def serve_until(stop: threading.Event) -> None:
        stop.wait()
        router.close()

    return _run_until_signal(serve_until)


def _gateway(args: argparse.Namespace) -> int:
    from fusion.local.gateway import from_registry, serve
    from fusion.local.ports import gateway_port

    _log_as("gateway")
    port = gateway_port() if args.port is None else args.port
    server = serve(args.host, port, from_registry(os.environ.get("FUSION_SERVICE_URL_TEMPLATE")))
    print(f"gateway on http://{args.host}:{port}", flush=True)

    def serve_until(stop: threading.Event) -> None:
        stop.wait()
        server.shutdown()

    return _run_until_signal(serve_until)


def _delivery_tokens() -> DeliveryTokens | None:
    """The router's sender identity: tokens of the local issuer, whose key `fusion dev` keeps."""
    from fusion.config import settings
    from fusion.local.issuer import KEY_FILE, DeliveryTokens, IssuerKey

    if not (state_dir() / KEY_FILE).exists():
        print(f"warning: no issuer key in {state_dir()}: deliveries carry no token and handlers will refuse them",
              file=sys.stderr)
        return None
    return DeliveryTokens(IssuerKey.load_or_create(state_dir()), settings().eventing_oidc_issuer)


def _log_as(part: str) -> None:
    from fusion import logs, tracing
    from fusion.config import settings

    logs.configure(settings().log_level)
    logs.bind(service=part)
    tracing.name_process(part)


def _run_until_signal(work: Callable[[threading.Event], object]) -> int:
    import signal

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    work(stop)
    return 0


def _topics(args: argparse.Namespace) -> int:
    from fusion.config import settings
    from fusion.kafka import ensure_topics
    from fusion.topics import all_topic_names

    created = ensure_topics(settings().kafka_brokers, all_topic_names(), partitions=args.partitions)
    print(f"{len(created)} topics created, {len(all_topic_names()) - len(created)} already there")
    return 0


def _dlq(args: argparse.Namespace) -> int:
    from fusion import dlq

    if args.action == "list":
        return dlq.list_dead_letters(args.topic)
    return dlq.replay(args.topic)


def _trace(args: argparse.Namespace) -> int:
    from fusion.db import pool
    from fusion.timeline import UnknownOrder, render, router_log_attempts, saga_of

    attempts = router_log_attempts(state_dir() / "logs" / "router.log")
    try:
        with pool().connect() as conn:
            print(render(*saga_of(conn, args.order_id, attempts)), end="")
    except UnknownOrder as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _verify(args: argparse.Namespace) -> int:
    from fusion.verify import UNPUBLISHED_AFTER_SECONDS, Limits, checks, violations

    found = violations(limits=Limits.from_settings(args.unpublished_after or UNPUBLISHED_AFTER_SECONDS))
    for violation in found:
        print(violation.describe())
    print(f"{len(checks())} checks, {len(found)} violations")
    return 1 if found else 0


# Subcommands with options of their own: everything after their name is theirs.
DELEGATED = {"knative": "fusion.knative.__main__", "openapi": "fusion.openapi", "smoke": "fusion.smoke"}


def _delegate(command: str, argv: list[str]) -> int:
    import importlib

    entry: Callable[[list[str]], int] = importlib.import_module(DELEGATED[command]).main
    return entry(argv)


def _carrier(args: argparse.Namespace) -> int:
    from functions.shipping.flow import UnknownTrackingNumber, advance_shipment

    try:
        status = advance_shipment(args.tracking_number)
    except UnknownTrackingNumber:
        print(f"no shipment has tracking number {args.tracking_number}", file=sys.stderr)
        return 1
    print(f"{args.tracking_number}: {status}")
    return 0


def _token(args: argparse.Namespace) -> int:
    from fusion.auth import STAFF_SCOPES
    from fusion.config import settings
    from fusion.local.issuer import IssuerKey, remembered_issuer

    config = settings()
    if config.environment != "development":
        print("fusion token mints tokens of the local issuer, for development only", file=sys.stderr)
        return 2
    scopes = args.scope or []
    unknown = [scope for scope in scopes if scope not in STAFF_SCOPES]
    if unknown:
        print(f"unknown scope {unknown[0]!r}; one of {', '.join(STAFF_SCOPES)}", file=sys.stderr)
        return 2
    if args.staff and not scopes:
        print("a staff token needs at least one --scope", file=sys.stderr)
        return 2
    if args.customer and scopes:
        print("a customer token carries no staff scopes; use --staff NAME --scope …", file=sys.stderr)
        return 2
    key = IssuerKey.load_or_create(state_dir())
    running = None if os.environ.get("OIDC_ISSUER") else remembered_issuer(state_dir())
    issuer, audience = running or (config.oidc_issuer, config.oidc_audience)
    print(key.mint(issuer, audience, args.customer or args.staff, scopes, ttl_seconds=args.ttl))
    return 0


def _issuer(args: argparse.Namespace) -> int:
    from fusion.config import DEFAULT_AUDIENCE, settings
    from fusion.local.issuer import IssuerKey, IssuerServer, remember_issuer, storefront_client

    if settings().environment != "development":
        print("fusion issuer is the local development issuer; point OIDC_ISSUER at a real one", file=sys.stderr)
        return 2
    audience = os.environ.get("OIDC_AUDIENCE") or DEFAULT_AUDIENCE
    server = IssuerServer(IssuerKey.load_or_create(state_dir()), args.port, host=args.host, public_url=args.public_url,
                          audience=audience, client=storefront_client(os.environ))
    remember_issuer(state_dir(), server.issuer, audience)
    server.start()
    print(f"local OIDC issuer {server.issuer} on {args.host}:{args.port}", flush=True)

    def serve_until(stop: threading.Event) -> None:
        stop.wait()
        server.stop()

    return _run_until_signal(serve_until)


def _status(args: argparse.Namespace) -> int:
    from fusion.status import show

    return show(args.prometheus, args.selector, args.window, args.interval, args.watch)


def _gate(args: argparse.Namespace) -> int:
    from fusion import gate
    from fusion.observe import Prometheus, watch_locally

    thresholds = gate.Thresholds(args.max_error_rate, args.p95_factor, args.unhealthy, args.max_lag,
                                 args.min_requests, args.latency_floor)
    read = Prometheus(args.prometheus, args.selector).snapshot if args.prometheus else watch_locally
    return gate.run(read, args.window, thresholds, record=args.record_baseline, baseline=args.baseline,
                    check_integrity=not args.no_integrity)


def _figures_source(parser: argparse.ArgumentParser, window: str) -> None:
    """Where `fusion status` and `fusion gate` read the figures: the local processes, or a Prometheus."""
    parser.add_argument("--prometheus", metavar="URL", help="a Prometheus HTTP API (default: scrape the local "
                        "platform's /metrics)")
    parser.add_argument("--selector", default="", help="label matchers every Prometheus series must carry, "
                        "e.g. 'namespace=\"fusioncommerce-production\"'")
    parser.add_argument("--window", type=_duration, default=_duration(window),
                        help=f"how far back the rates and p95 reach, e.g. 30s, 5m (default {window}; locally the "
                             "command watches that long)")


def _gate_parser(sub: Any) -> None:
    from fusion.gate import Thresholds

    gate = sub.add_parser("gate", help="the rollback gate: record the pre-deploy baseline, or judge a deploy "
                          "against it (exit 1 naming each failed criterion)")
    which = gate.add_mutually_exclusive_group(required=True)
    which.add_argument("--record-baseline", type=Path, metavar="FILE", help="write the baseline (p95 per "
                       "function, error rate) of the window to FILE")
    which.add_argument("--baseline", type=Path, metavar="FILE", help="judge the window against this baseline")
    _figures_source(gate, "30m")
    defaults = Thresholds()
    gate.add_argument("--max-error-rate", type=float, default=defaults.max_error_rate,
                      help=f"share of 5xx answers above which to roll back (default {defaults.max_error_rate})")
    gate.add_argument("--p95-factor", type=float, default=defaults.p95_factor,
                      help=f"a function's p95 above this times its baseline fails (default {defaults.p95_factor:g})")
    gate.add_argument("--unhealthy", type=int, default=defaults.unhealthy,
                      help=f"this many pods or processes failing health fail (default {defaults.unhealthy})")
    gate.add_argument("--max-lag", type=float, default=defaults.max_lag,
                      help=f"a consumer lag above this many messages fails (default {defaults.max_lag:.0f})")
    gate.add_argument("--min-requests", type=int, default=defaults.min_requests,
                      help=f"a p95 is judged on at least this many requests (default {defaults.min_requests})")
    gate.add_argument("--latency-floor", type=float, default=defaults.latency_floor,
                      help=f"a p95 under this many seconds never fails (default {defaults.latency_floor:g})")
    gate.add_argument("--no-integrity", action="store_true", help="skip the data integrity check")
    gate.set_defaults(run=_gate)


def _duration(text: str) -> int:
    """`90`, `90s`, `15m`, `1h` or `2d` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"a duration such as 90s, 15m or 1h, got {text!r}")
    return int(number) * units[unit]


def state_dir() -> Path:
    """Where the local platform keeps its data (FUSION_STATE_DIR, by default .fusion/ in the project)."""
    return Path(os.environ.get("FUSION_STATE_DIR") or PROJECT_ROOT / ".fusion")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run the whole platform locally")
    dev.add_argument("--empty", action="store_true", help="do not load the sample catalog into a fresh state")
    dev.set_defaults(run=_dev)
    reset = sub.add_parser("reset", help="remove the local state (.fusion/): the next fusion dev starts fresh")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(run=_reset)
    config = sub.add_parser("config", help="every environment variable, its value in effect and its meaning")
    config.add_argument("--markdown", action="store_true", help="the table of the README instead")
    config.set_defaults(run=_config)
    migrate = sub.add_parser("migrate", help="database migrations (Alembic)")
    migrate.add_argument("action", choices=["up", "status", "down"])
    migrate.add_argument("target", nargs="?", help="for down: a service (one step back), a revision or base")
    migrate.set_defaults(run=_migrate)
    relay = sub.add_parser("relay", help="publish the outbox to Kafka")
    relay.add_argument("--once", action="store_true", help="one pass, then exit (a sweeper)")
    relay.set_defaults(run=_relay)
    sub.add_parser("router", help="deliver Kafka events to the functions (local Knative Eventing)").set_defaults(
        run=_router)
    gateway = sub.add_parser("gateway", help="serve the one origin of the pages and the API, routed by the registry")
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, help="default 8000 shifted by FUSION_PORT_OFFSET")
    gateway.set_defaults(run=_gateway)
    topics = sub.add_parser("topics", help="create the event topics")
    topics.add_argument("action", choices=["create"])
    topics.add_argument("--partitions", type=int, default=1)
    topics.set_defaults(run=_topics)
    dlq = sub.add_parser("dlq", help="inspect and replay dead letters")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("topic", help="the event topic (e.g. order.created) or its .dlq topic")
    dlq.set_defaults(run=_dlq)
    trace = sub.add_parser("trace", help="an order's saga as a timeline: every event, handler and hop")
    trace.add_argument("order_id")
    trace.set_defaults(run=_trace)
    verify = sub.add_parser("verify", help="audit the business invariants across the services' data")
    verify.add_argument("--unpublished-after", type=float, metavar="SECONDS",
                        help="an outbox row unpublished for longer is a violation (default 60)")
    verify.set_defaults(run=_verify)
    sub.add_parser("knative", help="render or check the Knative manifests: render|check|routes …")
    sub.add_parser("openapi", help="write or check docs/openapi.json from the function registry: [--check]")
    sub.add_parser("smoke", help="post-deploy smoke test: --base-url URL | --port-offset N …")
    carrier = sub.add_parser("carrier", help="play the built-in carrier's next scan of a parcel")
    carrier.add_argument("action", choices=["advance"])
    carrier.add_argument("tracking_number")
    carrier.set_defaults(run=_carrier)
    token = sub.add_parser("token", help="print a token of the local issuer: --customer ID | --staff NAME --scope S …")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ID", help="a customer token; ID becomes its subject (the customer id)")
    who.add_argument("--staff", metavar="NAME", help="a staff token for NAME, with the scopes given by --scope")
    token.add_argument("--scope", action="append", help="a staff scope, e.g. catalog:write (repeatable)")
    token.add_argument("--ttl", type=_duration, default=3600, help="lifetime, e.g. 15m or 1h (default 1h)")
    token.set_defaults(run=_token)
    issuer = sub.add_parser("issuer", help="serve the local OIDC issuer alone (Compose; `fusion dev` runs its own)")
    issuer.add_argument("--host", default="127.0.0.1")
    issuer.add_argument("--port", type=int, default=int(os.environ.get("FUSION_ISSUER_PORT") or 8430))
    issuer.add_argument("--public-url", help="the issuer's URL as the functions reach it (the tokens' iss)")
    issuer.set_defaults(run=_issuer)
    status = sub.add_parser("status", help="one screen: health, request and error rates, p95, consumer lag, "
                            "dead letters, outbox backlog")
    _figures_source(status, "5m")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between two screens (and, locally, "
                        "the window of the first one; default 2)")
    status.add_argument("--watch", action="store_true", help="redraw the screen in place until Ctrl-C")
    status.set_defaults(run=_status)
    _gate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        from fusion.config import settings

        settings()
        result: int = args.run(args)
        return result
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
