"""The layers of qb2 and which way they may depend (issue 12, NFR-005; DESIGN.md "Layout").

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are
explained in docs/architecture.md. A new import that points down-to-up (the
compiler reaching for the coordinator, a daemon for the client, coordinator and
service node for each other) fails this test with the import chain that breaks it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept() -> None:
    done = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout, done.stdout[-2000:]


def test_the_contracts_name_every_installed_package_in_the_documented_order() -> None:
    """A package missing from the contracts would be unconstrained; the order is the documented one."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p for p in config["tool"]["setuptools"]["packages"] if p.count(".") == 1}  # qb2.<folder>
    assert set(config["tool"]["importlinter"]["root_packages"]) == packages
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers")["layers"]
    assert layers == ["qb2.experiments", "qb2.client", "qb2.coordinator | qb2.service_node", "qb2.daemon",
                      "qb2.compiler", "qb2.protocol | qb2.migrations"]
    assert {name.strip() for layer in layers for name in layer.split("|")} == packages
