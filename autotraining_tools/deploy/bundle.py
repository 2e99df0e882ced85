"""The two code artifacts a deploy uploads: the Lambda bundle and the worker artifact.

- **Lambda bundle** (``lambda/<sha256>.zip``): the runtime core package ``autotraining`` whole
  (the tooling is the separate ``autotraining_tools`` package and never ships), every handler
  module (and ``handlers/static`` when present) and the core's runtime dependencies
  (numpy, tenacity, structlog) for the Lambda runtime (python3.11, x86_64, manylinux2014).
  Never TensorFlow, never boto3 (the runtime has it). A dependency is copied from this
  virtualenv when its installed wheel fits the runtime (pure Python, or cp311 manylinux2014 /
  manylinux_2_17 x86_64 on an x86_64 host); otherwise its wheel for the runtime is fetched once
  with ``pip download --only-binary=:all: --platform manylinux2014_x86_64`` into ``.cache/``.
- **Worker source artifact** (``worker/<sha256>.tar.gz``): ``src/`` with the project's packaging
  files, the core and ``worker/`` (with its systemd unit). Only the embedded run names it (its
  instance never boots); ``autotraining deploy`` ships the worker's hashed wheelhouse instead
  (``autotraining_tools.deploy.wheelhouse``), which is what the instance installs.

Both are byte-for-byte deterministic (sorted entries, fixed timestamps and modes), so the same
code gives the same key, and an unchanged artifact is neither uploaded nor redeployed.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata as metadata
import io
import platform
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Lambda's limits for a function's code (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
LAMBDA_ZIPPED_LIMIT = 50 * 1024 * 1024
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024

# The core's runtime dependencies on Lambda (install_requires minus what the runtime provides
# or only the CLI needs), and distributions never put in the bundle.
LAMBDA_REQUIREMENTS = ("numpy", "tenacity", "structlog")
NEVER_BUNDLED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six",
                 "tensorflow", "tensorflow-cpu", "tf-keras", "keras", "tensorflowjs"}
# What a Lambda function runs: the runtime core and the handlers, whole packages. The tooling
# (``autotraining_tools``: CLI, embedded run, deploy) is a package of its own and never ships.
LAMBDA_PACKAGES = ("autotraining", "handlers")
WORKER_PACKAGING_FILES = ("setup.cfg", "pyproject.toml", "constraints.txt", "README.md")
LAMBDA_PLATFORM_TAGS = {"manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux1_x86_64",
                        "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux_2_12_x86_64"}
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(RuntimeError):
    """An artifact cannot be built (missing dependency, download failed, too large)."""


@dataclass(frozen=True)
class Artifact:
    """One built artifact: its bytes and its content-addressed S3 key."""

    kind: str  # "lambda" | "worker"
    data: bytes
    key: str
    unpacked_bytes: int
    files: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def packed_bytes(self) -> int:
        return len(self.data)

    def describe(self) -> str:
        return (f"{self.kind}: {self.key} ({self.files} files, {self.packed_bytes / 1e6:.1f} MB packed, "
                f"{self.unpacked_bytes / 1e6:.1f} MB unpacked)")


def _is_cache(path: str) -> bool:
    return "__pycache__" in path or path.endswith((".pyc", ".pyo"))


def _tree(root: Path, package: str) -> Iterator[tuple[str, Path]]:
    base = root / package
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not _is_cache(rel):
            yield rel, path


def _project_files(root: Path) -> list[tuple[str, bytes]]:
    return [(rel, path.read_bytes()) for package in LAMBDA_PACKAGES for rel, path in _tree(root, package)]


# ------------------------------------------------------------------ dependencies for the runtime

def _requirement_names(dist: metadata.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if ";" in req:
            marker = req.split(";", 1)[1]
            if "extra" in marker or "python_version < '3.11'" in marker.replace('"', "'"):
                continue
        names.append(re.split(r"[\s<>=!~\[;(]", req.strip(), maxsplit=1)[0])
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: Iterable[str]) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = _normal(todo.pop())
        if name in seen or name in NEVER_BUNDLED:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise BundleError(f"the Lambda bundle needs {name!r}, which is not installed in this environment") from None
        seen[name] = dist
        todo.extend(_requirement_names(dist))
    return [seen[k] for k in sorted(seen)]


def _fits_lambda(dist: metadata.Distribution) -> bool:
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    if not tags:
        return False
    for tag in tags:
        py, abi, plat = tag.split("-")
        if plat == "any" and abi == "none" and py.startswith("py3"):
            return True
        if (py == "cp311" and abi in ("cp311", "abi3") and plat in LAMBDA_PLATFORM_TAGS
                and platform.machine() == "x86_64"):
            return True
    return False


def _skip_dependency_file(rel: str) -> bool:
    parts = rel.split("/")
    return (_is_cache(rel) or rel.startswith("..") or "tests" in parts[1:-1]
            or parts[0].endswith(".dist-info") and parts[-1] in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"))


def _installed_files(dist: metadata.Distribution) -> list[tuple[str, bytes]]:
    out = []
    for f in dist.files or []:
        rel = f.as_posix()
        if _skip_dependency_file(rel):
            continue
        path = Path(str(dist.locate_file(f)))
        if path.is_file():
            out.append((rel, path.read_bytes()))
    return out


def _downloaded_files(dist: metadata.Distribution, cache_dir: Path) -> list[tuple[str, bytes]]:
    name, version = dist.metadata["Name"], dist.version
    cache_dir.mkdir(parents=True, exist_ok=True)
    pattern = f"{_normal(name).replace('-', '_')}-{version}-*.whl"
    wheels = sorted(cache_dir.glob(pattern))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp",
               "--dest", str(cache_dir), f"{name}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(cache_dir.glob(pattern))
        if proc.returncode != 0 or not wheels:
            raise BundleError(f"cannot download {name}=={version} for the Lambda runtime: "
                              f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    out = []
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for info in sorted(wheel.infolist(), key=lambda i: i.filename):
            if not info.is_dir() and not _skip_dependency_file(info.filename):
                out.append((info.filename, wheel.read(info)))
    return out


def dependency_files(requirements: Iterable[str] = LAMBDA_REQUIREMENTS,
                     cache_dir: Path | None = None) -> list[tuple[str, bytes]]:
    """Files of the requirements (and what they require) as the Lambda runtime needs them."""
    cache_dir = cache_dir or PROJECT_ROOT / ".cache" / "lambda-wheels"
    files: list[tuple[str, bytes]] = []
    for dist in _closure(requirements):
        files += _installed_files(dist) if _fits_lambda(dist) else _downloaded_files(dist, cache_dir)
    return files


# ------------------------------------------------------------------ packing

def _zip(files: Iterable[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel, data in sorted(dict(files).items()):
            info = zipfile.ZipInfo(rel, date_time=_FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _targz(files: Iterable[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in sorted(dict(files).items()):
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.uid, info.gid = len(data), 0, 0, 0
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


_built: dict[tuple[Any, ...], Artifact] = {}


def _fingerprint(root: Path) -> str:
    """Changes whenever a project file that goes into the bundle changes (paths and contents)."""
    digest = hashlib.sha256()
    for rel, data in _project_files(root):
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def lambda_bundle(root: Path = PROJECT_ROOT, with_dependencies: bool = True,
                  cache_dir: Path | None = None) -> Artifact:
    """The zip every function of the stack runs (``handlers.<module>.handler``).

    ``with_dependencies=False`` leaves out numpy & co: for the emulator, which stores Lambda
    code but never runs it. Built once per process while the project's files are unchanged.
    """
    key = (str(root), with_dependencies, str(cache_dir), _fingerprint(root))
    if key not in _built:
        if len(_built) >= 4:
            _built.pop(next(iter(_built)))
        _built[key] = _build_lambda_bundle(root, with_dependencies, cache_dir)
    return _built[key]


def _build_lambda_bundle(root: Path, with_dependencies: bool, cache_dir: Path | None) -> Artifact:
    files = _project_files(root)
    if not any(rel.startswith("handlers/") for rel, _ in files):
        raise BundleError(f"no handlers/ package under {root}")
    if with_dependencies:
        files += dependency_files(cache_dir=cache_dir)
    data = _zip(files)
    artifact = Artifact(kind="lambda", data=data, key=f"lambda/{hashlib.sha256(data).hexdigest()}.zip",
                        unpacked_bytes=sum(len(b) for _, b in files), files=len(files))
    if with_dependencies and (artifact.packed_bytes > LAMBDA_ZIPPED_LIMIT
                              or artifact.unpacked_bytes > LAMBDA_UNZIPPED_LIMIT):
        raise BundleError(f"the Lambda bundle exceeds Lambda's limits: {artifact.describe()}")
    return artifact


def worker_artifact(root: Path = PROJECT_ROOT) -> Artifact:
    """The tarball the instance installs: ``src/`` = packaging files + core + ``worker/``."""
    files: list[tuple[str, bytes]] = []
    for name in WORKER_PACKAGING_FILES:
        path = root / name
        if path.is_file():
            files.append((f"src/{name}", path.read_bytes()))
        elif name == "README.md":  # setup.cfg reads it as the long description
            files.append(("src/README.md", b"# lambda-autotraining worker\n"))
    for package in ("autotraining", "autotraining_tools", "worker"):
        files += [(f"src/{rel}", path.read_bytes()) for rel, path in _tree(root, package)]
    data = _targz(files)
    return Artifact(kind="worker", data=data, key=f"worker/{hashlib.sha256(data).hexdigest()}.tar.gz",
                    unpacked_bytes=sum(len(b) for _, b in files), files=len(files))


def upload(s3: Any, bucket: str, artifact: Artifact) -> bool:
    """Put the artifact under its key unless it is there already; True when it was uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=artifact.key)
        return False
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=artifact.key, Body=artifact.data,
                  ChecksumAlgorithm="SHA256", ServerSideEncryption="AES256")
    return True
