"""The function registry as the renderer sees it: every service whose folder exists.

A service whose `functions/<package>/main.py` is not written yet is skipped (its manifests appear
with the next render); any other import error is a real bug and propagates.
"""

from __future__ import annotations

import importlib

from fusion.registry import FUNCTION_MODULES, FunctionSpec, functions_of, services


def _missing_itself(module: str, exc: ModuleNotFoundError) -> bool:
    """True when the module (or one of its packages) does not exist, not when it imports something missing."""
    parts = module.split(".")
    return exc.name in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def load_specs() -> list[FunctionSpec]:
    """Every declared function of every service present, sorted by service then name."""
    for module in FUNCTION_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not _missing_itself(module, exc):
                raise
    return [spec for service in services() for spec in sorted(functions_of(service), key=lambda s: s.name)]
