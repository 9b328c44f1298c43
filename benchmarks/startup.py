"""What a function's cold start and memory are made of: the pieces `make bench` prints beside the totals.

- Bytecode: the image compiles it at build time (`deploy/Dockerfile`) and the container never writes
  it, so the bench compiles it the same way before it starts functions.
- Imports: functions-framework alone (with Flask, Werkzeug, Jinja2 and gunicorn's CLI), then with the
  function's own modules, each in a fresh interpreter: the floor a process start cannot go under.
- Memory: gunicorn's arbiter forks its worker after loading the function, so the two share most pages.
  Summing their RSS counts those pages twice; the container's memory cgroup charges them once. The
  resident pages of the process tree are read from /proc/<pid>/pagemap (root only), each counted once.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

PAGE_BYTES = 4096
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1


def compile_bytecode(root: Path) -> None:
    """The project's bytecode, compiled in place as the image build does."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "fusion", "functions"], cwd=root, check=True,
                   stdout=subprocess.DEVNULL)


def import_ms(root: Path, modules: str, runs: int = 5) -> float:
    """Median wall time of a fresh interpreter that imports `modules` and exits."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=root, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def rss_mb(processes: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in processes) / 2**20


def distinct_resident_mb(processes: list[psutil.Process]) -> float | None:
    """Resident memory of the processes with each physical page counted once; None without root."""
    frames: set[int] = set()
    for process in processes:
        read = _frames_of(process.pid)
        if read is None:
            return None
        frames |= read
    return len(frames) * PAGE_BYTES / 2**20


def _frames_of(pid: int) -> set[int] | None:
    frames: set[int] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            start, end = (int(bound, 16) for bound in line.split()[0].split("-"))
            if start >= 1 << 47:  # [vsyscall]: not readable through pagemap
                continue
            pagemap.seek(start // PAGE_BYTES * 8)
            entries = pagemap.read((end - start) // PAGE_BYTES * 8)
            for at in range(0, len(entries), 8):
                entry = int.from_bytes(entries[at:at + 8], "little")
                if entry & PRESENT:
                    frame = entry & PFN_MASK
                    if frame == 0:  # the kernel hides frame numbers from a reader that is not root
                        return None
                    frames.add(frame)
    return frames
