"""localstripe bound to 127.0.0.1 only, with its state kept in memory.

The stock ``localstripe`` command listens on every interface and pickles its whole store to
``/tmp/localstripe.pickle`` after each write (shared by every instance on the machine, and
reloaded at the next start). Here ``Store.dump_to_disk`` is a no-op and nothing is loaded.

Usage: ``python -m fusion.local.stripe_server --port 8420``
"""

from __future__ import annotations

import argparse
import logging

import localstripe.resources
import localstripe.server
from aiohttp import web

HOST = "127.0.0.1"


def _no_dump(self: object) -> None:
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fusion.local.stripe_server")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    localstripe.resources.Store.dump_to_disk = _no_dump
    web.run_app(localstripe.server.app, host=HOST, port=args.port)


if __name__ == "__main__":
    main()
