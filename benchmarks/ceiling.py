"""PostgreSQL's own ceiling on this machine: pgbench (shipped with the embedded server), TPC-B-like, in a
database of its own on the platform's server, with as many clients as the functions keep busy."""

from __future__ import annotations

import re
import subprocess

import psycopg
from psycopg.conninfo import conninfo_to_dict

from fusion.config import to_libpq_url
from fusion.local.postgres import postgres_bin_dir

DATABASE = "pgbench"


def committed_transactions(database_url: str) -> int:
    """Transactions committed in the platform's database so far (every schema, every process)."""
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def tpcb_ceiling(database_url: str, clients: int = 8, seconds: int = 15) -> float:
    """Transactions per second pgbench's TPC-B-like script reaches (scale 10, `clients` connections)."""
    url = to_libpq_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    parts = conninfo_to_dict(url)
    target = ["-h", str(parts.get("host", "127.0.0.1")), "-p", str(parts.get("port", 5432)),
              "-U", str(parts.get("user", "postgres")), DATABASE]
    env = {"PGPASSWORD": str(parts.get("password", "")), "PATH": "/usr/bin:/bin"}
    binary = str(postgres_bin_dir() / "pgbench")
    subprocess.run([binary, "-i", "-q", "-s", "10", *target], check=True, env=env, capture_output=True)
    run = subprocess.run([binary, "-c", str(clients), "-j", "2", "-T", str(seconds), "-n", *target],
                         check=True, env=env, capture_output=True, text=True)
    found = re.search(r"tps = ([0-9.]+)", run.stdout)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{run.stdout}\n{run.stderr}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {DATABASE}")
    return float(found.group(1))
