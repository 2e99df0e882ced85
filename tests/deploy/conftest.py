"""Fixtures of the deploy tests: a small real wheelhouse, so a deploy into the emulator never
downloads TensorFlow (the worker's full wheelhouse, ~1 GB, is built by `autotraining deploy`
itself and measured by scripts/bench_wheelhouse.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from autotraining_tools.deploy import wheelhouse
from autotraining_tools.deploy.wheelhouse import Wheelhouse, build_wheelhouse


@pytest.fixture(scope="session")
def project_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    """The project's own wheel alone, locked and packed like the real one (no index needed)."""
    return build_wheelhouse([], cache_dir=tmp_path_factory.mktemp("wheelhouse"), echo=lambda _: None)


@pytest.fixture
def wheelhouse_file(project_wheelhouse: Wheelhouse) -> Path:
    return project_wheelhouse.path


@pytest.fixture(autouse=True)
def _deploys_ship_the_small_wheelhouse(monkeypatch: pytest.MonkeyPatch, project_wheelhouse: Wheelhouse) -> None:
    # A deploy test that passes no --wheelhouse ships the project wheel alone instead of resolving
    # TensorFlow & co. Tests of the builder import build_wheelhouse by name and get the real one.
    monkeypatch.setattr(wheelhouse, "build_wheelhouse", lambda *args, **kwargs: project_wheelhouse)
