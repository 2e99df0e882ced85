"""Every test the README and the docs cite (``tests/<path>.py::<name>``) exists under that node id,
and every test file they name (``tests/<path>.py``) exists.

The README's claims table and the docs pages point readers at the test that shows each claim; a
renamed or moved test must not leave a citation to nothing behind. The test files are parsed with
``ast`` (no import, no collection: fast, and a test module that needs TensorFlow costs nothing).
A citation resolves when each ``::`` part names a function or class inside the previous one, as
pytest's node ids do (``file.py::TestClass::test_method``); a parametrized id's ``[...]`` is ignored.
"""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITING = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CITATION = re.compile(r"(tests/[\w/.-]+\.py)((?:::\w+)+)")
FILE = re.compile(r"tests/[\w/.-]+\.py\b")


def citations() -> list[tuple[str, str]]:
    """(citing file, node id) for every ``tests/...py::name`` in the README and docs pages."""
    found = []
    for page in CITING:
        for match in CITATION.finditer(page.read_text(encoding="utf-8")):
            found.append((page.relative_to(ROOT).as_posix(), match.group(1) + match.group(2)))
    return found


def cited_files() -> list[tuple[str, str]]:
    """(citing file, path) for every ``tests/...py`` the README and docs pages name."""
    return sorted({(page.relative_to(ROOT).as_posix(), match.group(0)) for page in CITING
                   for match in FILE.finditer(page.read_text(encoding="utf-8"))})


@cache
def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def resolves(node_id: str) -> bool:
    """Whether ``node_id`` names a test function (or class) that exists in the repository."""
    path, *names = node_id.split("::")
    file = ROOT / path
    if not file.is_file():
        return False
    body: list[ast.stmt] = _module(file).body
    for name in names:
        name = name.split("[", 1)[0]
        match = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == name]
        if not match:
            return False
        body = match[0].body
    return True


def test_the_readme_and_docs_cite_tests() -> None:
    cited = citations()
    assert any(page == "README.md" for page, _ in cited)  # the pattern still finds the claims table
    assert len(cited) >= 10


@pytest.mark.parametrize(("page", "node_id"), citations(), ids=lambda value: value)
def test_cited_test_exists(page: str, node_id: str) -> None:
    assert resolves(node_id), f"{page} cites {node_id}, which names no test in the repository"


@pytest.mark.parametrize(("page", "path"), cited_files(), ids=lambda value: value)
def test_cited_test_file_exists(page: str, path: str) -> None:
    assert (ROOT / path).is_file(), f"{page} names {path}, which is not in the repository"


def test_a_citation_to_a_missing_or_misplaced_test_does_not_resolve() -> None:
    assert resolves("tests/test_cited_tests.py::test_cited_test_exists")
    assert not resolves("tests/test_cited_tests.py::test_that_was_never_written")
    assert not resolves("tests/no_such_file.py::test_cited_test_exists")
    # a method cited without its class is not a pytest node id
    assert not resolves("tests/test_cited_tests.py::resolves::name")
