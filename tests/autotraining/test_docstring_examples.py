"""The runnable examples in the core's docstrings stay true (each module here has at least one)."""
from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["autotraining.generator", "autotraining_tools.rowfiles", "autotraining.dashboard",
                                    "autotraining.encoding", "autotraining.schema_change", "autotraining.strictjson"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
