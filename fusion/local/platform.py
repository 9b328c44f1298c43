"""`fusion dev`: the whole platform on one machine, each embedded part replaced by the real one
when its environment variable is set (DATABASE_URL, KAFKA_BROKERS, STRIPE_SECRET_KEY, OIDC_ISSUER).

Once it is ready, a process of ours that exits is started again, as Kubernetes restarts a container:
after a delay that doubles with each recent restart, up to a cap; one that keeps exiting stops the
platform. Before it is ready, any exit is a failed start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from functions.payments.rules import STRIPE_WEBHOOK_EVENTS
from fusion.config import DEFAULT_AUDIENCE, DEFAULT_ISSUER_PORT
from fusion.local import sample
from fusion.local.broker import start_broker
from fusion.local.issuer import IssuerKey, IssuerServer, remember_issuer, storefront_client
from fusion.local.ports import (
    METRICS_PORTS,
    any_free_port,
    gateway_port,
    holder_of,
    metrics_port,
    port_free,
    wait_for_port,
)
from fusion.local.postgres import start_postgres
from fusion.local.process import ManagedProcess, spawn
from fusion.local.stripe import start_localstripe
from fusion.metrics import METRICS_ADDRESS, MULTIPROC_DIR
from fusion.registry import service_named, services
from fusion.variables import default_of
from fusion.waiting import wait_until
from fusion.wakeup import WAKE_ADDRESS

LOCAL_WEBHOOK_SECRET = "whsec_fusion_local"
LOCAL_STRIPE_KEY = "sk_test_fusion_local"


# The embedded backing services: (part, the variable that moves it, the variable whose absence starts it).
BACKING_PORTS = (
    ("postgres", "FUSION_PG_PORT", "DATABASE_URL"),
    ("broker", "FUSION_BROKER_PORT", "KAFKA_BROKERS"),
    ("stripe", "FUSION_STRIPE_PORT", "STRIPE_SECRET_KEY"),
    ("issuer", "FUSION_ISSUER_PORT", None),  # always local: it signs the router's deliveries
)
LOG_LINES_SHOWN = 15
FIRST_RESTART_DELAY = 0.5  # seconds, doubled for each restart within the crash-loop window
MAX_RESTART_DELAY = 8.0
CRASH_LOOP_RESTARTS = 5  # restarts within CRASH_LOOP_WINDOW seconds, after which a part is given up
CRASH_LOOP_WINDOW = 60.0
SUPERVISION_INTERVAL = 0.2


class PortClash(RuntimeError):
    """A port the platform needs is held by another process."""


@dataclass
class Ports:
    postgres: int = int(default_of("FUSION_PG_PORT"))
    broker: int = int(default_of("FUSION_BROKER_PORT"))
    stripe: int = int(default_of("FUSION_STRIPE_PORT"))
    issuer: int = DEFAULT_ISSUER_PORT
    moved: dict[str, str] = field(default_factory=dict)  # part -> why it runs elsewhere

    @classmethod
    def plan(cls, env: dict[str, str]) -> Ports:
        """The backing services' ports: as configured, or a free one when an unset default is taken."""
        ports = cls()
        for part, variable, replaced_by in BACKING_PORTS:
            if replaced_by and env.get(replaced_by):
                continue  # the real one is used; nothing listens locally
            port = int(env.get(variable) or default_of(variable))
            if not env.get(variable) and not port_free(port):
                free = any_free_port()
                ports.moved[part] = f"port {port} is taken by {holder_of(port)}; using {free} ({variable} to choose)"
                port = free
            setattr(ports, part, port)
        return ports


HIGHEST_PORT = 65535


def check_function_ports() -> None:
    """Fail before anything starts when a function's port, or the relay's or router's metrics port, is held
    by another process."""
    ports = {"gateway": gateway_port(), **{service.name: service.local_port for service in services().values()}}
    ports.update({f"{part} metrics": metrics_port(part) for part in METRICS_PORTS})
    beyond = [f"{name} on {port}" for name, port in ports.items() if not 0 < port <= HIGHEST_PORT]
    if beyond:
        raise PortClash(f"FUSION_PORT_OFFSET={os.environ.get('FUSION_PORT_OFFSET', '')} puts {', '.join(beyond)}, "
                        f"outside 1-{HIGHEST_PORT}; the highest port is the gateway's (8000 + the offset), so use an "
                        f"offset below {HIGHEST_PORT - 8000 + 1}")
    clashes = [f"port {port} ({name}) is taken by {holder_of(port)}"
               for name, port in ports.items() if not port_free(port)]
    if clashes:
        raise PortClash("\n".join(clashes) + "\nthe gateway (8000) and the function ports (3000-3007) are the "
                        "original ones; set FUSION_PORT_OFFSET=N to shift them all, e.g. FUSION_PORT_OFFSET=100 for "
                        "8100 and 3100-3107")


@dataclass
class Supervised:
    """A process of the platform, started again by ``start`` when it exits."""

    server: ManagedProcess
    start: Callable[[], ManagedProcess]
    log: Path
    restarts: int = 0
    recent: deque[float] = field(default_factory=deque)  # when it was restarted, within the window
    due: float | None = None  # while it is down: when it is to be started again

    @property
    def name(self) -> str:
        return self.server.name

    def tend(self, now: float) -> bool:
        """Notice an exit and plan the restart, or restart when due; True when it was restarted.

        RuntimeError, naming the part with the end of its log, when it keeps exiting."""
        code = self.server.exit_code() if self.due is None else None
        if code is not None:
            self._down(exit_description(code), now)
        if self.due is None or now < self.due:
            return False
        self.due = None
        self.restarts += 1
        self.recent.append(now)
        try:
            self.server = self.start()
        except RuntimeError as exc:  # a backing service that did not come up counts as one more exit
            self._down(f"did not start again: {exc}", now)
            return False
        print(f"{self.name} restarted (restart {self.restarts}, pid {self.pid_and_restarts()[0]})", flush=True)
        return True

    def _down(self, why: str, now: float) -> None:
        self.server.kill_leftovers()
        while self.recent and now - self.recent[0] > CRASH_LOOP_WINDOW:
            self.recent.popleft()
        if len(self.recent) >= CRASH_LOOP_RESTARTS:
            raise RuntimeError(f"{self.name} {why} after {len(self.recent)} restarts within "
                               f"{CRASH_LOOP_WINDOW:.0f} s; it keeps failing, so everything stops. The end of its "
                               f"log:\n{last_lines(self.log)}\nthe whole log: {self.log}")
        delay = min(MAX_RESTART_DELAY, FIRST_RESTART_DELAY * 2 ** len(self.recent))
        self.due = now + delay
        print(f"{self.name} {why}; restarting it in {delay:g} s (restart {self.restarts + 1})", flush=True)

    def pid_and_restarts(self) -> tuple[str, str]:
        """Its cells in the table: the pid while it runs, and how often it was restarted (blank: never)."""
        process = self.server.process
        pid = str(process.pid) if process is not None and self.due is None else ""
        return pid, str(self.restarts) if self.restarts else ""


def exit_description(code: int) -> str:
    try:
        killed = f" ({signal.Signals(-code).name})" if code < 0 else ""
    except ValueError:
        killed = ""
    return f"exited with code {code}{killed}"


@dataclass
class Platform:
    root: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    backing: list[Supervised] = field(default_factory=list)
    children: list[Supervised] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    issuer: IssuerServer | None = None

    @property
    def state_dir(self) -> Path:
        return Path(self.env.get("FUSION_STATE_DIR") or self.root / ".fusion")

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def start(self, progress: bool = True) -> None:
        check_function_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ports = Ports.plan(self.env)
        self.notes.update({f"{part} port": why for part, why in ports.moved.items()})

        def say(message: str) -> None:
            if progress:
                print(message, flush=True)

        say("starting backing services…")
        self._backing_services(ports)
        say("applying migrations…")
        self._migrate_and_create_topics()
        say("starting functions, outbox relay and event router…")
        # Where orders and group buying look up products they have not heard of yet: the catalog started here.
        if not self.env.get("CATALOG_URL", "").strip():
            self.env["CATALOG_URL"] = f"http://127.0.0.1:{service_named('catalog').local_port}"
        # The relay and the operations service tell the router which topics got records (fusion.wakeup), on
        # the UDP port of the same number as its /metrics.
        if not self.env.get(WAKE_ADDRESS, "").strip():
            self.env[WAKE_ADDRESS] = f"127.0.0.1:{metrics_port('router')}"
        self._spawn_gateway()
        for service in services().values():
            self._spawn_service(service.name, service.source, service.local_port)
        self._spawn_eventing()
        self._wait_until_ready()
        self._register_stripe_webhook()

    def _backing_services(self, ports: Ports) -> None:
        env = self.env
        if not env.get("DATABASE_URL"):
            pg = self._keep(partial(start_postgres, self.state_dir / "postgres", ports.postgres,
                                    log_file=self.log_dir / "postgres.log"))
            env["DATABASE_URL"] = pg.url
            self.notes["postgres"] = f"{pg.url}  (embedded, data in {self.state_dir / 'postgres'})"
        else:
            self.notes["postgres"] = "DATABASE_URL (external)"
        if not env.get("KAFKA_BROKERS"):
            broker = self._keep(partial(start_broker, ports.broker, log_file=self.log_dir / "broker.log"))
            env["KAFKA_BROKERS"] = broker.url
            self.notes["broker"] = f"{broker.url}  (embedded Tansu, memory only)"
        else:
            self.notes["broker"] = f"{env['KAFKA_BROKERS']}  (external)"
        if not env.get("STRIPE_SECRET_KEY"):
            stripe = self._keep(partial(start_localstripe, ports.stripe, log_file=self.log_dir / "stripe.log"),
                                again=partial(self._localstripe_again, ports.stripe))
            env.update(STRIPE_SECRET_KEY=LOCAL_STRIPE_KEY, STRIPE_API_BASE=stripe.url,
                       STRIPE_WEBHOOK_SECRET=LOCAL_WEBHOOK_SECRET, STRIPE_AUTO_CONFIRM="true")
            self.notes["stripe"] = f"{stripe.url}  (localstripe, auto-confirming test cards)"
        else:
            self.notes["stripe"] = "STRIPE_SECRET_KEY (Stripe API)"
        self._identity(ports)
        env.setdefault("FUSION_ENV", "development")
        env.setdefault("PUBLIC_BASE_URL", "http://127.0.0.1")
        env.setdefault("THREADS", "32")

    def _keep(self, start: Callable[[], ManagedProcess],
              again: Callable[[], ManagedProcess] | None = None) -> ManagedProcess:
        """Start a backing service and supervise it; ``again`` restarts it when that takes more than ``start``."""
        server = start()
        self.backing.append(Supervised(server, again or start, self.log_dir / f"{server.name}.log"))
        return server

    def _localstripe_again(self, port: int) -> ManagedProcess:
        server = start_localstripe(port, log_file=self.log_dir / "stripe.log")
        self._register_stripe_webhook()  # localstripe keeps nothing: the new one must hear of the webhook
        return server

    def _identity(self, ports: Ports) -> None:
        """The local OIDC issuer: it signs the router's delivery tokens, and customers' and staff's tokens
        unless OIDC_ISSUER names a real provider."""
        env = self.env
        self.issuer = IssuerServer(IssuerKey.load_or_create(self.state_dir), ports.issuer,
                                   audience=env.get("OIDC_AUDIENCE") or DEFAULT_AUDIENCE,
                                   client=storefront_client(env)).start()
        env.update(EVENTING_OIDC_ISSUER=self.issuer.issuer, FUSION_STATE_DIR=str(self.state_dir))
        if env.get("OIDC_ISSUER"):
            self.notes["issuer"] = (f"{env['OIDC_ISSUER']}  (external); the local issuer {self.issuer.issuer} "
                                    "signs event deliveries")
            return
        env.update(OIDC_ISSUER=self.issuer.issuer, OIDC_AUDIENCE=env.get("OIDC_AUDIENCE") or DEFAULT_AUDIENCE)
        remember_issuer(self.state_dir, env["OIDC_ISSUER"], env["OIDC_AUDIENCE"])
        self.notes["issuer"] = f"{self.issuer.issuer}  (local OIDC issuer; tokens: fusion token --customer ID)"

    def _migrate_and_create_topics(self) -> None:
        self._run_cli(["migrate", "up"])
        self._run_cli(["topics", "create"])

    def _run_cli(self, args: list[str]) -> None:
        result = subprocess.run([sys.executable, "-m", "fusion.cli", *args], env=self.env, cwd=self.root,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"`fusion {' '.join(args)}` failed:\n{result.stderr[-3000:]}")

    def _spawn(self, name: str, command: list[str], address: str, env: dict[str, str] | None = None,
               prepare: Callable[[], None] | None = None) -> None:
        """Start a supervised child; `prepare` runs before every start, the first and each restart."""
        log = self.log_dir / f"{name}.log"
        launch_it = partial(spawn, name, address, command, log, env=env or self.env, cwd=self.root)

        def start() -> ManagedProcess:
            if prepare is not None:
                prepare()
            return launch_it()

        self.children.append(Supervised(start(), start, log))

    def _spawn_gateway(self) -> None:
        """The one origin of the pages and the API, first in the table: where a browser goes."""
        port = gateway_port()
        self._spawn("gateway", [sys.executable, "-m", "fusion.cli", "gateway", "--port", str(port)],
                    f"http://127.0.0.1:{port}",
                    {name: value for name, value in self.env.items() if name != MULTIPROC_DIR})

    def _spawn_service(self, name: str, source: str, port: int) -> None:
        command = [sys.executable, "-m", "functions_framework", "--source", source, "--target", "serve",
                   "--host", "127.0.0.1", "--port", str(port)]
        samples = self.state_dir / "metrics" / name  # the gunicorn workers' metrics, started afresh
        self._spawn(name, command, f"http://127.0.0.1:{port}", {**self.env, MULTIPROC_DIR: str(samples)},
                    partial(emptied, samples))

    def _eventing_env(self, part: str) -> dict[str, str]:
        """The relay's or router's environment: its own /metrics port, and no worker directory (one process)."""
        env = {name: value for name, value in self.env.items() if name != MULTIPROC_DIR}
        return {**env, METRICS_ADDRESS: f"127.0.0.1:{metrics_port(part)}"}

    def _spawn_eventing(self) -> None:
        ready = self.state_dir / "router.ready"
        ready.unlink(missing_ok=True)
        self.env["FUSION_ROUTER_READY_FILE"] = str(ready)
        self._spawn("relay", [sys.executable, "-m", "fusion.cli", "relay"],
                    f"outbox → Kafka, /metrics on :{metrics_port('relay')}", self._eventing_env("relay"))
        self._spawn("router", [sys.executable, "-m", "fusion.cli", "router"],
                    f"Kafka → functions, /metrics on :{metrics_port('router')}", self._eventing_env("router"))

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for service in services().values():
            self.check_children()
            wait_for_port("127.0.0.1", service.local_port, max(1.0, deadline - time.monotonic()))
            url = f"http://127.0.0.1:{service.local_port}/health"
            self._wait_for(partial(_answers_200, url), deadline, f"{url} did not answer 200 in time")
        gateway = f"http://127.0.0.1:{gateway_port()}/healthz"
        self._wait_for(partial(_answers_200, gateway), deadline, f"{gateway} did not answer 200 in time")
        ready = Path(self.env["FUSION_ROUTER_READY_FILE"])
        self._wait_for(ready.exists, deadline,
                       "the event router did not join its consumer groups in time (see router.log)")

    def _wait_for(self, condition: Callable[[], bool], deadline: float, failure: str) -> None:
        """Poll ``condition`` until ``deadline``, failing at once when a child has exited."""
        def done() -> bool:
            if condition():
                return True
            self.check_children()
            return False

        try:
            wait_until(done, deadline - time.monotonic(), 0.1, failure)
        except TimeoutError:
            raise RuntimeError(failure) from None

    def _register_stripe_webhook(self) -> None:
        api_base = self.env.get("STRIPE_API_BASE")
        if not api_base:
            return
        body = json.dumps({
            "url": f"http://127.0.0.1:{service_named('payments').local_port}/payments/webhook",
            "secret": self.env["STRIPE_WEBHOOK_SECRET"],
            "events": list(STRIPE_WEBHOOK_EVENTS),
        }).encode()
        request = urllib.request.Request(f"{api_base}/_config/webhooks/fusioncommerce", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.env['STRIPE_SECRET_KEY']}"})
        with urllib.request.urlopen(request, timeout=5):
            pass

    def check_children(self) -> None:
        """While starting: a child that exited is a failed start."""
        for child in self.children:
            code = child.server.exit_code()
            if code is not None:
                raise RuntimeError(f"{child.name} exited with code {code}; the end of its log:\n"
                                   f"{last_lines(child.log)}\nthe whole log: {child.log}")

    def supervise(self) -> None:
        """One turn of the supervision loop: restart what exited once its delay is over; show the new table."""
        now = time.monotonic()
        restarted = [part.name for part in (*self.backing, *self.children) if part.tend(now)]
        if restarted:
            print(self.table(), flush=True)

    def table(self) -> str:
        backing = {part.name: part for part in self.backing}
        rows = [(c.name, c.server.url, *c.pid_and_restarts()) for c in self.children]
        rows += [(name, note, *(backing[name].pid_and_restarts() if name in backing else ("", "")))
                 for name, note in self.notes.items()]
        width = max(len(r[0]) for r in rows) + 2
        lines = [f"{'part':<{width}}{'where':<57} {'pid':<8}restarts",
                 f"{'-' * (width - 2):<{width}}{'-' * 56:<57} {'---':<8}--------"]
        lines += [f"{name:<{width}}{where:<57} {pid:<8}{restarts}".rstrip() for name, where, pid, restarts in rows]
        lines.append(f"logs in {self.log_dir}")
        return "\n".join(lines)

    def stop(self, timeout: float = 5.0) -> None:
        for child in reversed(self.children):
            child.server.ask_to_stop()
        deadline = time.monotonic() + timeout
        for child in self.children:
            child.server.wait_stopped(max(0.1, deadline - time.monotonic()))
        self.children.clear()
        for backing in reversed(self.backing):
            backing.server.stop()
        self.backing.clear()
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None


def emptied(folder: Path) -> None:
    """`folder` exists and holds nothing: what a process that counts from zero needs."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def last_lines(log: Path, count: int = LOG_LINES_SHOWN) -> str:
    """The last whole lines of a log, a run of repeated lines (a retry loop) shown once with its count."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    folded: list[str] = []
    repeats = 0
    for line in lines:
        if folded and line == folded[-1]:
            repeats += 1
            continue
        if repeats:
            folded.append(f"  (the line above {repeats} more times)")
            repeats = 0
        folded.append(line)
    if repeats:
        folded.append(f"  (the line above {repeats} more times)")
    return "\n".join("  " + line for line in folded[-count:]) or "  (empty)"


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def load_sample_catalog(platform: Platform, empty: bool) -> None:
    """On a fresh state, fill the shop with the sample catalog (unless `--empty`)."""
    if not sample.is_fresh(platform.state_dir):
        return
    if empty:
        sample.mark_loaded(platform.state_dir, "declined (--empty)")
        return
    if platform.issuer is None or platform.env["OIDC_ISSUER"] != platform.issuer.issuer:  # no staff token here
        platform.notes["sample"] = "not loaded: OIDC_ISSUER is external (use fusion dev --empty to silence)"
        return
    token = platform.issuer.key.mint(platform.issuer.issuer, platform.env["OIDC_AUDIENCE"], "sample-loader",
                                     ["catalog:write", "campaigns:write"], ttl_seconds=300)
    loaded = sample.load(f"http://127.0.0.1:{service_named('catalog').local_port}",
                         f"http://127.0.0.1:{service_named('group-commerce').local_port}", token)
    sample.mark_loaded(platform.state_dir, loaded)
    platform.notes["sample"] = loaded


def run(root: Path, empty: bool = False) -> int:
    """Start everything, print what runs where, and stop it all on Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    platform = Platform(root)
    try:
        started = time.monotonic()
        platform.start()
        load_sample_catalog(platform, empty)
        print(platform.table())
        print(f"FusionCommerce is ready in {time.monotonic() - started:.1f} s — Ctrl-C stops everything.", flush=True)
        while not stop.wait(SUPERVISION_INTERVAL):
            platform.supervise()
        print("stopping…")
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        platform.stop()
        print("stopped.", flush=True)
