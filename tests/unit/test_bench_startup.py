"""The bench's memory figure: pages a forked worker shares with its arbiter are counted once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from benchmarks import startup

# A parent that fills 40 MB, then forks: the child shares those pages until either writes them.
FORKING = (
    "import os, sys, time\n"
    "ballast = bytearray(40 * 2**20)\n"
    "for at in range(0, len(ballast), 4096): ballast[at] = 1\n"
    "if os.fork() == 0:\n"
    "    time.sleep(30); sys.exit(0)\n"
    "print('forked', flush=True); time.sleep(30)\n"
)


@pytest.mark.skipif(os.geteuid() != 0, reason="physical frame numbers are shown to root only")
def test_pages_shared_by_a_fork_are_counted_once() -> None:
    parent = subprocess.Popen([sys.executable, "-c", FORKING], stdout=subprocess.PIPE, text=True)
    processes: list[psutil.Process] = []
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "forked"
        tree = psutil.Process(parent.pid)
        deadline = time.monotonic() + 10
        while not tree.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        processes = [tree, *tree.children()]
        assert len(processes) == 2
        summed = startup.rss_mb(processes)
        distinct = startup.distinct_resident_mb(processes)
        assert distinct is not None
        assert summed > 80  # both show the 40 MB in their RSS
        assert max(p.memory_info().rss for p in processes) / 2**20 <= distinct < summed - 30
    finally:
        for process in processes[1:]:  # the forked child: not ours to wait for
            process.kill()
        parent.kill()
        parent.wait(10)
