"""`fusion smoke` on the command line: where the services answer, the options, the printed report."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import urllib.parse
import uuid

from fusion.progress import Progress
from fusion.registry import services
from fusion.smoke.report import StepResult
from fusion.smoke.scenario import STEPS, Credentials, SmokeTest

LOCAL_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 60.0


def service_urls(base_url: str | None = None, port_offset: int | None = None,
                 overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Where each service answers: one gateway URL for all, or the local ports (shifted), then the overrides."""
    if base_url:
        urls = {name: base_url.rstrip("/") for name in services()}
    else:
        urls = {name: f"http://{LOCAL_HOST}:{service.port + (port_offset or 0)}"
                for name, service in services().items()}
    urls.update({name: url.rstrip("/") for name, url in (overrides or {}).items()})
    return urls


def _http_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL such as http://localhost:3000, got {value!r}")
    return value


def _service_url(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or name.strip() not in services():
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=URL with SERVICE one of {', '.join(services())}, got {value!r}")
    return name.strip(), _http_url(url.strip())


def _port_offset(value: str) -> int:
    ports = [service.port for service in services().values()]
    try:
        offset = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if min(ports) + offset < 1 or max(ports) + offset > 65535:
        raise argparse.ArgumentTypeError(f"{offset} shifts the ports out of 1..65535")
    return offset


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusion smoke", description="Post-deploy smoke test: health, a product and an order through the platform.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--base-url", type=_http_url, metavar="URL",
                       help="one gateway URL serving every route (e.g. an ingress)")
    where.add_argument("--port-offset", type=_port_offset, metavar="N",
                       help=f"a local platform on {LOCAL_HOST}, ports shifted by N (default: the original ports)")
    parser.add_argument("--service-url", type=_service_url, action="append", default=[], metavar="SERVICE=URL",
                        help="where one service answers (repeatable; overrides the above)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="how long each asynchronous step may take (default %(default)g)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary instead")
    parser.add_argument("--staff-token", default=os.environ.get("SMOKE_STAFF_TOKEN"), metavar="JWT",
                        help="a staff token with catalog:write (default $SMOKE_STAFF_TOKEN; locally minted by the "
                             "local issuer when unset)")
    parser.add_argument("--customer-token", default=os.environ.get("SMOKE_CUSTOMER_TOKEN"), metavar="JWT",
                        help="a customer token the test order is placed with (default $SMOKE_CUSTOMER_TOKEN)")
    return parser


def _credentials(staff: str | None, customer: str | None) -> Credentials | None:
    """The tokens given, or tokens of the local issuer of a `fusion dev` started from this project."""
    if staff and customer:
        return Credentials(staff, customer)
    from fusion.cli import state_dir
    from fusion.local.issuer import IssuerKey, remembered_issuer

    local = remembered_issuer(state_dir())
    if local is None:
        return None
    key, (issuer, audience) = IssuerKey.load_or_create(state_dir()), local
    run = uuid.uuid4().hex[:8]
    return Credentials(staff or key.mint(issuer, audience, f"smoke-staff-{run}", ["catalog:write"], 600),
                       customer or key.mint(issuer, audience, f"smoke-{run}", (), 600))


def _step_line(result: StepResult) -> str:
    return f"{result.outcome.upper():<4}  {result.name:<15} {result.seconds:7.2f} s  {result.detail}"


def main(argv: list[str] | None = None) -> int:
    """Run the smoke test: 0 when every step passed, 1 when one did not, 2 for bad arguments."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse exits on bad arguments (2) and after --help (0)
        return stop.code if isinstance(stop.code, int) else 2
    urls = service_urls(args.base_url, args.port_offset, dict(args.service_url))
    credentials = _credentials(args.staff_token, args.customer_token)
    if credentials is None:
        print("fusion smoke needs --staff-token and --customer-token (or SMOKE_STAFF_TOKEN and "
              "SMOKE_CUSTOMER_TOKEN): no local issuer to mint them", file=sys.stderr)
        return 2
    if not args.json:
        print("smoke test of " + ", ".join(f"{name} {url}" for name, url in urls.items()), flush=True)
    with Progress("smoke test", len(STEPS)) as progress:
        def step_done(result: StepResult) -> None:
            progress.advance(note=_step_line(result))

        report = SmokeTest(urls, args.timeout, credentials, on_step=None if args.json else step_done).run()
    print(json.dumps(report.as_json(), indent=2) if args.json else report.summary(), flush=True)
    return 0 if report.ok else 1

