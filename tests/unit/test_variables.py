"""One source for the settings: every variable the code reads is declared, and the README shows them all."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fusion.variables import BY_NAME, VARIABLES, in_effect, markdown_table, masked

ROOT = Path(__file__).resolve().parents[2]
# Read by the tools we run, not by the platform's own settings.
NOT_OURS = {"PYTHONPATH", "PYTHONUNBUFFERED", "LANG", "HOME", "PATH"}
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
ACCESSORS = {"get", "getenv", "setdefault", "pop", "_choice", "_positive_int", "_deployed_value", "setenv"}


def _constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _looks_like_environment(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return "environ" in text or text in ("env", "self.env", "full_env") or text.endswith(".env")


def _names_read(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    constants = _constants(tree)

    def literal(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ACCESSORS:
                receiver_ok = isinstance(func, ast.Name) or _looks_like_environment(func.value)
                candidates = [node.args[0]] if isinstance(func, ast.Attribute) else node.args[1:2]
                for argument in candidates if receiver_ok else []:
                    value = literal(argument)
                    if value and ENV_NAME.match(value):
                        names.add(value)
        if isinstance(node, ast.Subscript) and _looks_like_environment(node.value):
            value = literal(node.slice)
            if value and ENV_NAME.match(value):
                names.add(value)
    return names


def test_every_variable_the_code_reads_is_declared() -> None:
    read: dict[str, set[str]] = {}
    for path in [*ROOT.glob("fusion/**/*.py"), *ROOT.glob("functions/**/*.py"), *ROOT.glob("benchmarks/*.py")]:
        for name in _names_read(path):
            read.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    undeclared = {name: sorted(paths) for name, paths in read.items() if name not in BY_NAME and name not in NOT_OURS}
    assert undeclared == {}, "declare these in fusion/variables.py"
    assert {"DATABASE_URL", "ORDER_HOLD_SECONDS", "SHIPPING_CARRIER_SECRET", "FUSION_PORT_OFFSET"} <= set(read)


def test_the_scan_finds_an_undeclared_read(tmp_path: Path) -> None:
    sample = tmp_path / "reader.py"
    sample.write_text('import os\nNAME = "SOME_SETTING"\nos.environ.get(NAME)\nos.environ["OTHER_ONE"]\n')
    assert _names_read(sample) == {"SOME_SETTING", "OTHER_ONE"}


def test_the_readme_table_is_the_declared_one() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- settings: fusion config --markdown -->\n", "<!-- end of settings -->"
    assert start in readme and end in readme
    assert readme.split(start, 1)[1].split(end, 1)[0] == markdown_table()


def test_names_are_unique_and_explained() -> None:
    assert len(BY_NAME) == len(VARIABLES)
    assert all(variable.meaning for variable in VARIABLES)


@pytest.mark.parametrize(("value", "shown"), [("sk_live_abcdefghijkl", "sk_l… (set, 20 characters)"),
                                              ("short", "(set)"), ("", "")])
def test_secrets_are_masked(value: str, shown: str) -> None:
    assert masked(BY_NAME["STRIPE_SECRET_KEY"], value) == shown
    assert masked(BY_NAME["LOG_LEVEL"], "info") == "info"


def test_values_in_effect_come_from_the_environment_or_the_default() -> None:
    rows = dict((variable.name, value) for variable, value in in_effect({"LOG_LEVEL": "warn",
                                                                          "STRIPE_SECRET_KEY": "sk_live_secretvalue"}))
    assert rows["LOG_LEVEL"] == "warn" and rows["ORDER_HOLD_SECONDS"] == "900 (default)"
    assert "secretvalue" not in rows["STRIPE_SECRET_KEY"]
