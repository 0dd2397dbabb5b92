"""The package rules of DESIGN §3 and DEVELOPERS.md, checked on the source rather than trusted."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dataflow"

# package → what it must not import (DESIGN §3); the rest may flow one way only.
FORBIDDEN = {
    "invoices": {"dataflow.aggregation", "dataflow.api", "dataflow.metering", "dataflow.billing"},
    "aggregation": {
        "dataflow.api",
        "dataflow.metering",
        "dataflow.billing",
        "dataflow.contracts",
        "dataflow.invoices.synthetic",
        "dataflow.invoices.nfe",
        "lxml",
    },
    "metering": {"dataflow.api", "dataflow.billing", "dataflow.aggregation"},
    "billing": {"dataflow.api", "dataflow.aggregation", "dataflow.metering"},
    "contracts": {"dataflow.api", "dataflow.billing", "dataflow.metering", "dataflow.aggregation"},
}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_comes_before_it(package: str) -> None:
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_directory_is_a_flat_pile_and_long_modules_say_why() -> None:
    for d in [SRC, *(p for p in SRC.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        modules = [p for p in d.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 16, f"{d.relative_to(SRC)} holds {len(modules)} modules"
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 650:
            head = text[:1500].lower()
            assert "lines" in head, f"{path.relative_to(SRC)} is long and does not say why"
