"""`python -m fusion.knative render|check|routes`: the manifests from the command line (and CI)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fusion.knative.environments import environments
from fusion.knative.render import KNATIVE_DIR, check, render_all, render_environment
from fusion.knative.routing import routes_in


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fusion.knative", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    render = sub.add_parser("render", help="write knative/ (every environment) and deploy/n8n/workflows.json")
    render.add_argument("--environment", choices=sorted(environments()),
                        help="render only this environment, into --out (e.g. with CI's image tag)")
    render.add_argument("--image-tag", help="image tag for --environment, e.g. sha-1a2b3c4 or v1.4.0")
    render.add_argument("--out", type=Path, help="output folder (default: knative/)")
    sub.add_parser("check", help="fail when the committed manifests differ from a fresh render")
    routes = sub.add_parser("routes", help="function -> CloudEvent types, as the committed Triggers route them")
    routes.add_argument("--environment", choices=sorted(environments()), default="production")
    return parser


def _render(args: argparse.Namespace) -> int:
    if args.environment:
        if args.out is None:
            print("--environment needs --out (the committed knative/ always holds every environment)",
                  file=sys.stderr)
            return 2
        written = render_environment(args.environment, args.out, args.image_tag)
    else:
        written = render_all(args.out or KNATIVE_DIR)
    print(f"{len(written)} files written")
    return 0


def _check() -> int:
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the manifests are out of date: run `fusion knative render` and commit the result", file=sys.stderr)
        return 1
    print("knative/ matches the function registry")
    return 0


def _routes(environment: str) -> int:
    env = environments()[environment]
    folder = KNATIVE_DIR / ("base" if env.name == "base" else f"overlays/{env.name}")
    routes = routes_in(folder)
    print(json.dumps({name: sorted(types) for name, types in sorted(routes.items())}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "render":
        return _render(args)
    if args.action == "check":
        return _check()
    return _routes(args.environment)


if __name__ == "__main__":
    sys.exit(main())
