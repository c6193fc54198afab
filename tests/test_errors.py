"""One exception hierarchy (issue 12): every error qb2 raises on purpose is a Qb2Error,
under its own package's base (the tree is documented in qb2.protocol.errors)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from qb2.client.errors import ClientError
from qb2.compiler.errors import CompilerError
from qb2.coordinator.errors import CoordinatorError
from qb2.protocol.errors import ProtocolError, Qb2Error
from qb2.service_node.errors import NodeError

BASES = {"qb2.protocol": ProtocolError, "qb2.compiler": CompilerError, "qb2.service_node": NodeError,
         "qb2.coordinator": CoordinatorError, "qb2.client": ClientError}
#: Exceptions used as control flow inside one module, never raised to a caller.
INTERNAL = {"qb2.service_node.faults.DropRequest"}


def exception_classes() -> list[tuple[str, type[BaseException]]]:
    found = []
    for package in BASES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    found.append((f"{module.__name__}.{name}", cls))
    return found


def test_the_hierarchy_is_found() -> None:
    names = {name for name, _ in exception_classes()}
    assert "qb2.compiler.errors.QasmValidationError" in names and "qb2.client.http.ApiError" in names


@pytest.mark.parametrize(("name", "cls"), exception_classes(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_qb2_exception_is_under_its_packages_base(name: str, cls: type[BaseException]) -> None:
    if name in INTERNAL or cls is Qb2Error:
        return
    package = ".".join(name.split(".")[:2])
    assert issubclass(cls, Qb2Error), f"{name} does not derive from Qb2Error"
    assert cls is BASES[package] or issubclass(cls, BASES[package]), f"{name} is not a {BASES[package].__name__}"
