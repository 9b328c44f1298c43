"""Supervising a local service: a child process in its own session, started, awaited and stopped.

``spawn`` starts it and returns at once; ``launch`` returns once the service answers real client
requests; ``ManagedProcess.stop`` shuts it down and leaves no process behind. ``start_or_attach``
first looks at the port: a healthy server of the same kind already there is used as is
(``process`` is then ``None`` and ``stop`` leaves that server running).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypedDict

from fusion.local.ports import HOST, POLL, port_open
from fusion.waiting import wait_until

START_TIMEOUT = 15.0
ATTACH_PROBE_TIMEOUT = 3.0  # an existing server may be busy; be patient before calling it foreign
START_PROBE_TIMEOUT = 1.0  # while starting, probe often
TAIL_LINES = 30


@dataclass
class ManagedProcess:
    """A running local service; ``process`` is ``None`` when we attached to an existing server."""

    name: str
    url: str
    process: subprocess.Popen[bytes] | None
    stop_signal: signal.Signals = signal.SIGTERM

    def exit_code(self) -> int | None:
        """The code it exited with (negative: the signal that killed it); None while it runs, or when not ours."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 5.0) -> None:
        """Send ``stop_signal``, wait up to ``timeout`` s, then SIGKILL it and its children; idempotent."""
        self.ask_to_stop()
        self.wait_stopped(timeout)

    def ask_to_stop(self) -> None:
        """Send ``stop_signal`` without waiting, so that several servers stop at once."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)

    def wait_stopped(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for it to exit, then SIGKILL it and its children."""
        proc = self.process
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            children = _child_pids(proc.pid)
            _kill_all([proc.pid, *children])
            proc.wait()

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of its session once it has exited: the workers or backends of a killed
        server still hold its port or shared memory and would keep the next one from starting."""
        if self.process is not None and self.process.poll() is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


def start_or_attach(
    name: str,
    kind: str,
    port: int,
    url: str,
    command: Callable[[], list[str]],
    answers: Callable[[float], bool],
    log_file: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> ManagedProcess:
    """Use the server of this ``kind`` on ``127.0.0.1:port``, or start ``command()`` there.

    ``answers(timeout)`` tells whether a server of this kind answers at ``url``. ``command`` is
    only called when a server is started, so attaching needs nothing installed.
    """
    if port_open(HOST, port):
        if answers(ATTACH_PROBE_TIMEOUT):
            return ManagedProcess(name, url, None, stop_signal)
        raise RuntimeError(f"{name}: port {port} is already in use by something that is not {kind}")

    def ready() -> bool:
        return port_open(HOST, port) and answers(START_PROBE_TIMEOUT)

    return launch(name, url, command(), ready, log_file, env=env, stop_signal=stop_signal)


def launch(
    name: str,
    url: str,
    command: list[str],
    ready: Callable[[], bool],
    log_file: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    owner: pwd.struct_passwd | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> ManagedProcess:
    """Spawn ``command`` and return once ``ready()``; a server that exits or stays unready is stopped."""
    server = spawn(name, url, command, log_file, env=env, cwd=cwd, owner=owner, stop_signal=stop_signal)
    with stopped_on_error(server):
        wait_started(name, ready, server.process, log_file)
    return server


def spawn(
    name: str,
    url: str,
    command: list[str],
    log_file: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    owner: pwd.struct_passwd | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> ManagedProcess:
    """Start ``command`` in a session of its own, its output appended to ``log_file``; returns at once."""
    return ManagedProcess(name, url, _spawn(command, log_file, env=env, cwd=cwd, owner=owner), stop_signal)


@contextlib.contextmanager
def stopped_on_error(server: ManagedProcess) -> Iterator[None]:
    """Stop ``server`` if the block fails, so a failed start leaves no process behind."""
    try:
        yield
    except BaseException:
        server.stop()
        raise


def wait_started(
    name: str,
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes] | None,
    log_file: Path | None,
    timeout: float = START_TIMEOUT,
) -> None:
    """Wait until ``ready()``; fail at once, with the log's tail, if ``process`` exits."""

    def up() -> bool:
        if ready():
            return True
        if process is not None and process.poll() is not None:
            raise _start_error(name, f"exited with code {process.returncode}", log_file)
        return False

    try:
        wait_until(up, timeout, POLL, f"{name} coming up")
    except TimeoutError:
        raise _start_error(name, f"did not come up within {timeout:.0f}s", log_file) from None


class ChildOptions(TypedDict):
    """How every child of ours runs, as keyword arguments of ``subprocess.Popen`` and ``run``."""

    stdin: int
    env: Mapping[str, str] | None
    cwd: Path | None
    user: int | None
    group: int | None
    extra_groups: list[int] | None


def child_options(
    env: Mapping[str, str] | None = None, cwd: Path | None = None, owner: pwd.struct_passwd | None = None
) -> ChildOptions:
    """No stdin, and as ``owner`` (its own groups only) when given, else as ourselves."""
    return ChildOptions(
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        user=owner.pw_uid if owner else None,
        group=owner.pw_gid if owner else None,
        extra_groups=[] if owner else None,
    )


def last_lines(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _spawn(
    command: Sequence[str],
    log_file: Path | None,
    *,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    owner: pwd.struct_passwd | None,
) -> subprocess.Popen[bytes]:
    with _log_sink(log_file) as sink:
        return subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, **child_options(env, cwd, owner)
        )


@contextlib.contextmanager
def _log_sink(log_file: Path | None) -> Iterator[IO[bytes] | int]:
    if log_file is None:
        yield subprocess.DEVNULL
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as handle:
        yield handle


def _start_error(name: str, what: str, log_file: Path | None) -> RuntimeError:
    if log_file is None:
        return RuntimeError(f"{name} {what} (no log file was given)")
    tail = _tail(log_file) or "<empty>"
    return RuntimeError(f"{name} {what}; last lines of {log_file}:\n{tail}")


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            data = handle.read().decode(errors="replace")
    except OSError as exc:
        return f"<unreadable: {exc}>"
    return last_lines(data)


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
