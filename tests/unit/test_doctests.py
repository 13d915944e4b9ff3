"""Every docstring example in the package runs (``>>>`` lines marked ``# doctest: +SKIP`` need a
model, a network or a GPU and are skipped), so examples cannot go stale."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import agentic_compression

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(agentic_compression.__path__, "agentic_compression.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
