"""The code artifacts: the Lambda bundle runs the handlers without TensorFlow (or a venv) and
fits Lambda's limits; the worker artifact carries what the instance installs; both are
content-addressed and deterministic."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from autotraining_tools.deploy.bundle import (
    LAMBDA_UNZIPPED_LIMIT,
    LAMBDA_ZIPPED_LIMIT,
    Artifact,
    lambda_bundle,
    worker_artifact,
)

ROOT = Path(__file__).resolve().parents[2]
HANDLER_MODULES = sorted(p.stem for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__")

# Runs in a fresh interpreter with only the bundle (first on sys.path) and the interpreter's
# standard library plus boto3 (which the Lambda runtime provides). TensorFlow imports fail.
IMPORT_HANDLERS = r"""
import importlib, importlib.abc, os, sys
bundle = sys.argv[1]
sys.path.insert(0, bundle)

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "tensorflowjs"):
            raise ImportError(f"{name} is not available on Lambda")
        return None

sys.meta_path.insert(0, NoTensorFlow())
for module in sys.argv[2:]:
    m = importlib.import_module(f"handlers.{module}")
    assert callable(m.handler), module
    assert m.__file__.startswith(bundle), m.__file__
import numpy, autotraining
assert numpy.__file__.startswith(bundle), numpy.__file__
assert autotraining.__file__.startswith(bundle), autotraining.__file__
assert float(numpy.arange(4.0).dot(numpy.ones(4))) == 6.0
assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "moto")]
# Everything not from the standard library came from the bundle or the runtime's boto3 family.
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "certifi"}  # botocore's
stdlib = os.path.dirname(os.__file__)
for name, m in list(sys.modules.items()):
    f = getattr(m, "__file__", None) or ""
    if f and not f.startswith((bundle, stdlib)) and not (name.split(".")[0] in RUNTIME and "/runtime/" in f):
        raise AssertionError(f"{name} was imported from outside the bundle: {f}")
print("imported", len(sys.argv) - 2, "handlers")
"""


@pytest.fixture(scope="module")
def bundle() -> Artifact:
    return lambda_bundle()


def _runtime_packages(target: Path) -> Path:
    """A directory holding only what the Lambda python3.11 runtime provides besides the stdlib."""
    import importlib.util

    target.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "certifi"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


def test_bundle_imports_every_handler_without_tensorflow(bundle: Artifact, tmp_path: Path) -> None:
    zipfile.ZipFile(io.BytesIO(bundle.data)).extractall(tmp_path / "task")
    runtime = _runtime_packages(tmp_path / "runtime")
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONNOUSERSITE": "1"}
    # -S: none of this venv's site-packages; the bundle first, then the runtime's boto3 family
    # (like Lambda's /var/task before /var/runtime).
    code = f"import sys; sys.path.append({str(runtime)!r})\n" + IMPORT_HANDLERS
    assert HANDLER_MODULES
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "task"), *HANDLER_MODULES],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"imported {len(HANDLER_MODULES)} handlers" in proc.stdout


def test_bundle_fits_lambda_limits_and_leaves_out_runtime_and_tensorflow(bundle: Artifact) -> None:
    names = zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
    unzipped = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(bundle.data)).infolist())
    print(f"\nLambda bundle: {bundle.packed_bytes / 1e6:.1f} MB zipped (limit {LAMBDA_ZIPPED_LIMIT / 2**20:.0f} MiB), "
          f"{unzipped / 1e6:.1f} MB unzipped (limit {LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MiB), {len(names)} files")
    assert bundle.packed_bytes < LAMBDA_ZIPPED_LIMIT
    assert unzipped == bundle.unpacked_bytes < LAMBDA_UNZIPPED_LIMIT
    tops = {n.split("/")[0] for n in names}
    assert {"autotraining", "handlers", "numpy"} <= tops
    assert not {t for t in tops if t.split("-")[0].lower() in ("boto3", "botocore", "tensorflow", "keras",
                                                                "tf_keras", "moto", "tensorflowjs")}
    assert not [n for n in names if n.startswith(("autotraining_tools/local/", "autotraining_tools/deploy/", "worker/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert bundle.key == f"lambda/{bundle.sha256}.zip"


def test_bundle_carries_the_handlers_static_files_when_present(bundle: Artifact) -> None:
    static = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "handlers" / "static").rglob("*") if p.is_file()) \
        if (ROOT / "handlers" / "static").is_dir() else []
    names = set(zipfile.ZipFile(io.BytesIO(bundle.data)).namelist())
    assert set(static) <= names


def test_same_code_gives_the_same_key_and_changed_code_a_new_one(tmp_path: Path) -> None:
    for package in ("autotraining", "handlers", "worker"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f'"""{package}"""\n')
    (tmp_path / "handlers" / "upload.py").write_text("def handler(event, context):\n    return 1\n")
    first = lambda_bundle(tmp_path, with_dependencies=False)
    assert lambda_bundle(tmp_path, with_dependencies=False).data == first.data
    (tmp_path / "handlers" / "upload.py").write_text("def handler(event, context):\n    return 2\n")
    assert lambda_bundle(tmp_path, with_dependencies=False).key != first.key
    w1, w2 = worker_artifact(tmp_path), worker_artifact(tmp_path)
    assert w1.data == w2.data and w1.key == f"worker/{w1.sha256}.tar.gz"
    (tmp_path / "worker" / "__init__.py").write_text('"""changed"""\n')
    assert worker_artifact(tmp_path).key != w1.key


def test_worker_artifact_is_an_installable_source_tree_with_the_systemd_files() -> None:
    artifact = worker_artifact()
    with tarfile.open(fileobj=io.BytesIO(artifact.data), mode="r:gz") as tar:
        names = set(tar.getnames())
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    for needed in ("src/setup.cfg", "src/pyproject.toml", "src/constraints.txt", "src/README.md",
                   "src/autotraining/__init__.py", "src/autotraining/settings.py", "src/worker/__init__.py"):
        assert needed in names, needed
    expected = {f"src/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / "worker").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert expected <= names  # every worker file, including worker/systemd/ when present
    assert not [n for n in names if n.startswith("src/handlers/") or "__pycache__" in n]
    print(f"\n{artifact.describe()}")
