"""`make profile`: where each process spends its CPU while the saga runs.

Starts the bench's platform, places orders at a steady `RATE` for `SECONDS`, and meanwhile samples every
function, the relay, the router and the Stripe stand-in (localstripe) with py-spy (gunicorn's workers
included). Prints, per process, the functions with the most samples of their own (self) and the
project's functions with the most samples under them (total). Nothing is asserted; py-spy itself takes
some of the CPU it measures.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from benchmarks.run import bench_platform, create_sale_products, place_orders, timed
from fusion.local.platform import Platform

RATE = 10
SECONDS = 30
SAMPLING_RATE = 97  # a prime, so sampling does not beat with the services' timers
SHOWN = 8
OURS = ("fusion/", "functions/", "localstripe/")


def _frame(frame: str) -> tuple[str, str]:
    """(function name, file) of one frame of py-spy's raw output: "name (path:line)"."""
    name, _, where = frame.partition(" (")
    return name, where.rsplit(":", 1)[0]


def summarize(raw: Path) -> tuple[int, list[tuple[int, str]], list[tuple[int, str]]]:
    """(samples, the most frequent frames on top of the stack, the project's frames with most samples below)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        samples += int(count)
        name, where = _frame(frames[-1])
        own[f"{name} ({Path(where).name})"] += int(count)
        for frame in dict.fromkeys(frames):  # a recursive frame once per sample
            name, where = _frame(frame)
            if any(part in where for part in OURS):
                total[f"{name} ({where.split('/main/')[-1]})"] += int(count)
    return samples, [(n, f) for f, n in own.most_common(SHOWN)], [(n, f) for f, n in total.most_common(SHOWN)]


def record(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = str(Path(sysconfig.get_path("scripts")) / "py-spy")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(SECONDS - 5),
                             "--rate", str(SAMPLING_RATE), "--format", "raw", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile(platform: Platform, folder: Path) -> None:
    skus = timed("creating products for sale", lambda: create_sale_products(20))
    load = threading.Thread(target=place_orders, args=(skus, 2, RATE * SECONDS // 2, 2 / RATE))
    load.start()
    recorders = {}
    for part in [*platform.children, *platform.backing]:
        if part.name not in ("gateway", "postgres", "broker") and part.server.process is not None:
            recorders[part.name] = record(part.server.process.pid, folder / f"{part.name}.txt")
    for recorder in recorders.values():
        recorder.wait()
    load.join()
    for name in recorders:
        raw = folder / f"{name}.txt"
        if not raw.exists():
            print(f"\n{name}: no samples", flush=True)
            continue
        samples, own, total = summarize(raw)
        print(f"\n{name}: {samples} samples at {SAMPLING_RATE} Hz over {SECONDS - 5} s", flush=True)
        for count, frame in own:
            print(f"  self  {count / samples:6.1%}  {frame}", flush=True)
        for count, frame in total:
            print(f"  total {count / samples:6.1%}  {frame}", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fusion-profile-") as folder, bench_platform() as platform:
        print(f"… {RATE} orders/s for {SECONDS} s, every process sampled by py-spy", flush=True)
        profile(platform, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
