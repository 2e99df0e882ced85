"""Fixtures of the deploy tests: a small real wheelhouse, so a deploy into the emulator never
downloads TensorFlow (the worker's full wheelhouse is built by `autotraining deploy` itself)."""
from __future__ import annotations

from pathlib import Path

import pytest

from autotraining.deploy.wheelhouse import Wheelhouse, build_wheelhouse


@pytest.fixture(scope="session")
def project_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """The project's own wheel alone, locked and packed like the real one (no index needed)."""
    return build_wheelhouse([], cache_dir=tmp_path_factory.mktemp("wheelhouse"), echo=lambda _: None)


@pytest.fixture
def wheelhouse_file(project_wheelhouse: Wheelhouse) -> Path:
    return project_wheelhouse.path
