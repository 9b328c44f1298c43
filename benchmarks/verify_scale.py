"""How long `fusion verify` takes on a large shop: 100,000 orders (most of them shipped, each with its
history, payment, shipment and label) written straight into a migrated database, then every check run.

`make bench` runs it on its own platform's database; alone: `python -m benchmarks.verify_scale URL`
(a migrated database it may fill; the rows it writes stay).
"""

from __future__ import annotations

import sys
import time

import psycopg
from psycopg.rows import namedtuple_row

from fusion.db import Connection
from fusion.verify import Limits, checks, violations

ORDERS = 100_000
# n % 10: 0-5 shipped, 6 delivered, 7 cancelled, 8 failed, 9 confirmed (just now, so not stuck)
SEED = [
    """CREATE TEMP TABLE seeded AS SELECT gen_random_uuid() AS id, n,
           CASE WHEN n %% 10 < 6 THEN 'shipped' WHEN n %% 10 = 6 THEN 'delivered' WHEN n %% 10 = 7 THEN 'cancelled'
                WHEN n %% 10 = 8 THEN 'failed' ELSE 'confirmed' END AS status
       FROM generate_series(1, %(count)s) AS n""",
    """INSERT INTO orders.orders (id, customer_id, status, total_minor, currency)
       SELECT id, 'scale-' || (n %% 5000), status, 1250, 'USD' FROM seeded""",
    """INSERT INTO orders.order_history (order_id, status)
       SELECT s.id, h.status FROM seeded s CROSS JOIN LATERAL unnest(CASE
           WHEN s.status IN ('shipped', 'delivered') THEN ARRAY['created', 'confirmed', 'paid', 'shipped']
           WHEN s.status = 'confirmed' THEN ARRAY['created', 'confirmed']
           ELSE ARRAY['created', s.status] END) AS h(status)""",
    """INSERT INTO payments.payments (id, order_id, amount_minor, currency, status)
       SELECT gen_random_uuid(), id::text, 1250, 'USD', 'succeeded' FROM seeded
       WHERE status IN ('shipped', 'delivered')""",
    """INSERT INTO shipping.shipments (id, order_id, carrier, tracking_number, status, label_url, recipient)
       SELECT gen_random_uuid(), id::text, 'fusion-post', 'SCALE' || n || substr(md5(id::text), 1, 8),
              'label_created', 'http://label', 'someone' FROM seeded WHERE status IN ('shipped', 'delivered')""",
    """INSERT INTO shipping.labels (shipment_id, content_type, document)
       SELECT sh.id, 'application/pdf', '\\x25504446'::bytea FROM shipping.shipments sh
       JOIN seeded s ON sh.order_id = s.id::text""",
    "ANALYZE",
]


def seed(database_url: str, count: int = ORDERS) -> None:
    with psycopg.connect(database_url) as conn:
        for statement in SEED:
            conn.execute(statement, {"count": count})
        conn.commit()


def measure(database_url: str, runs: int = 3) -> tuple[list[float], int]:
    """(seconds per run of every check, violations found)."""
    limits = Limits(confirmed_seconds=3600, step_seconds=600)
    timings, found = [], 0
    with psycopg.connect(database_url, row_factory=namedtuple_row) as raw:
        for _ in range(runs):
            started = time.perf_counter()
            found = len(violations(Connection(raw), limits))
            timings.append(time.perf_counter() - started)
            raw.rollback()
    return timings, found


def main(argv: list[str]) -> int:
    database_url = argv[0]
    started = time.perf_counter()
    seed(database_url)
    print(f"seeded {ORDERS:,} orders in {time.perf_counter() - started:.1f} s", flush=True)
    timings, found = measure(database_url)
    print(f"fusion verify, {len(checks())} checks on {ORDERS:,} orders: best {min(timings):.2f} s, "
          f"worst {max(timings):.2f} s ({found} violations)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
