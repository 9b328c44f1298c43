"""The charts of a `make bench` run: each figure's latency distribution, and the orders' throughput and lag
over the run, as PNG files in the bench output folder (matplotlib, a development dependency)."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

LATENCY_CHART = "latency.png"
FLOW_CHART = "throughput.png"
SAMPLES = "samples.json"  # what the charts are drawn from: `python -m benchmarks.charts` draws them again


@dataclass
class Flow:
    """Orders placed and finished, and outbox rows waiting, sampled every `interval` s by a thread."""

    database_url: str
    interval: float = 0.5
    times: list[float] = field(default_factory=list)
    placed: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    unpublished: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def series(self) -> dict[str, list[float] | list[int]]:
        return {"times": self.times, "placed": self.placed, "finished": self.finished,
                "unpublished": self.unpublished}

    def start(self) -> Flow:
        self._thread = threading.Thread(target=self._sample, name="bench-flow", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _sample(self) -> None:
        started = time.monotonic()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            schemas = [row[0] for row in conn.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'").fetchall()]
            waiting = " + ".join(f"(SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL)" for s in schemas)
            while not self._stop.wait(self.interval):
                row = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE status IN ('shipped', 'delivered', 'failed', "
                    f"'cancelled')), {waiting or '0'} FROM orders.orders").fetchone()
                assert row is not None
                self.times.append(time.monotonic() - started)
                self.placed.append(int(row[0]))
                self.finished.append(int(row[1]))
                self.unpublished.append(int(row[2]))


def _per_second(times: list[float], counts: list[int]) -> list[float]:
    return [0.0] + [(counts[n] - counts[n - 1]) / max(times[n] - times[n - 1], 1e-9) for n in range(1, len(counts))]


def write(folder: Path, latencies: dict[str, list[float]], flow: Flow) -> list[Path]:
    """Keep the samples and draw both charts into `folder`; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = folder / SAMPLES
    samples.write_text(json.dumps({"latencies": latencies, "flow": flow.series()}))
    return [samples, *draw(folder, latencies, flow)]


def draw(folder: Path, latencies: dict[str, list[float]], flow: Flow) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written = []
    if latencies:
        rows = len(latencies)
        figure, axes = plt.subplots(rows, 1, figsize=(9, 2.2 * rows), squeeze=False)
        for axis, (name, samples) in zip(axes[:, 0], latencies.items(), strict=True):
            cut = statistics.quantiles(samples, n=1000, method="inclusive")  # as the printed figures
            axis.hist(samples, bins=60, range=(min(samples), cut[994]), color="#4477aa")  # the last 0.5 % cut off
            for per_mille, style in ((500, "-"), (950, "--"), (990, ":")):
                value = cut[per_mille - 1]
                axis.axvline(value, color="#cc3311", linestyle=style, label=f"p{per_mille // 10} {value:.2f} ms")
            axis.set_title(name, fontsize=9, loc="left")
            axis.set_xlabel("ms", fontsize=8)
            axis.legend(fontsize=7)
        figure.tight_layout()
        written.append(_save(figure, folder / LATENCY_CHART))
    if flow.times:
        figure, (rate, lag) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
        rate.plot(flow.times, _per_second(flow.times, flow.placed), label="placed / s")
        rate.plot(flow.times, _per_second(flow.times, flow.finished), label="finished (shipped, failed, cancelled) / s")
        rate.set_ylabel("orders / s")
        rate.legend(fontsize=8)
        lag.plot(flow.times, [p - f for p, f in zip(flow.placed, flow.finished, strict=True)],
                 label="orders in flight (placed, not finished)")
        lag.plot(flow.times, flow.unpublished, label="outbox rows not yet published")
        lag.set_xlabel("seconds into the run")
        lag.legend(fontsize=8)
        figure.tight_layout()
        written.append(_save(figure, folder / FLOW_CHART))
    return written


def _save(figure: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=110)  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return path


def main(argv: list[str]) -> int:
    """Draw the charts again from a run's samples: `python -m benchmarks.charts [folder]`."""
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent / "output"
    kept = json.loads((folder / SAMPLES).read_text())
    flow = Flow("", **kept["flow"])
    for chart in draw(folder, kept["latencies"], flow):
        print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
