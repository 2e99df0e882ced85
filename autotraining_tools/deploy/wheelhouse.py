"""The worker's wheelhouse: every wheel the instance installs, pinned and hashed, in one artifact.

The instance never downloads a package at boot. ``autotraining deploy`` resolves the worker's
requirements (``install_requires`` + the ``[worker]`` extra, pinned by ``constraints.txt``) for the
instance's platform (Amazon Linux 2023, CPython 3.11, x86_64 manylinux) with ``pip download
--only-binary=:all:``, builds the project's own wheel (``pip wheel --no-deps``), writes
``requirements.lock`` (one ``name==version --hash=sha256:...`` line per wheel) and packs
``wheels/*.whl`` + ``requirements.lock`` into one uncompressed tar, ``worker/<sha256>.tar``. The
instance checks the tar against its key, then runs ``pip install --no-index --find-links wheels
--require-hashes -r requirements.lock``: a wheel whose bytes differ from the lock is refused, and
so is any requirement missing from the lock.

Wheels are cached under ``.cache/wheelhouse/`` (TensorFlow alone is ~600 MB): a build first
resolves from the cache only (no network), and asks the index only when the cache lacks a wheel.
The tar is deterministic (sorted entries, fixed times and modes), so unchanged requirements and
code give the same key and nothing is uploaded again.
"""
from __future__ import annotations

import configparser
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotraining.logs import get_logger
from autotraining_tools.deploy.bundle import PROJECT_ROOT, WORKER_PACKAGING_FILES, BundleError

log = get_logger(__name__)

CACHE_DIR = PROJECT_ROOT / ".cache" / "wheelhouse"
LOCK_NAME = "requirements.lock"
WHEELS_DIR = "wheels"
# The instance: Amazon Linux 2023, python3.11, x86_64. Its glibc is 2.34, so every manylinux tag up
# to manylinux_2_34 installs there (h5py 3.16 ships manylinux_2_28 wheels only); pip takes the
# list as given, it does not infer the older tags from a newer one.
INSTANCE_GLIBC = (2, 34)
INSTANCE_PLATFORMS = ("manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64",
                      *(f"manylinux_2_{minor}_x86_64" for minor in range(5, INSTANCE_GLIBC[1] + 1)))
INSTANCE_PLATFORM = ("--only-binary=:all:", *(arg for p in INSTANCE_PLATFORMS for arg in ("--platform", p)),
                     "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")
# What constraints.txt leaves open but the instance needs: tensorflow_hub (imported by tensorflowjs)
# imports pkg_resources, which setuptools 82 removed; tensorboard's "setuptools>=41" would otherwise
# lock the newest one (a venv's own setuptools is replaced by the locked wheel).
INSTANCE_CONSTRAINTS = ("setuptools<82",)
KEEP_BUILT = 2  # packed wheelhouses kept under <cache>/built/
_FIXED_EPOCH = 315532800  # 1980-01-01, the earliest time a zip (a wheel) can hold
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Wheel:
    """One wheel of the wheelhouse, as the lock names it."""

    name: str  # normalized (PEP 503)
    version: str
    filename: str
    sha256: str
    size: int

    def lock_line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class Wheelhouse:
    """A packed wheelhouse on disk and its content-addressed S3 key (``worker/<sha256>.tar``)."""

    path: Path
    key: str
    sha256: str
    wheels: tuple[Wheel, ...]
    size: int

    @property
    def lock(self) -> str:
        return "".join(w.lock_line() + "\n" for w in self.wheels)

    def describe(self) -> str:
        return f"worker wheelhouse: {self.key} ({len(self.wheels)} wheels, {self.size / 1e6:.1f} MB)"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_wheel(path: Path) -> Wheel:
    match = _WHEEL_NAME.match(path.name)
    if not match:
        raise BundleError(f"{path.name} is not a wheel file name")
    return Wheel(name=normalize(match["name"]), version=match["version"], filename=path.name,
                 sha256=sha256_file(path), size=path.stat().st_size)


def worker_requirements(root: Path = PROJECT_ROOT, extra: str | None = "worker") -> list[str]:
    """The instance's requirements as setup.cfg states them: install_requires + the ``extra``
    (None: install_requires alone, what the project wheel needs to install)."""
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    lines = cfg.get("options", "install_requires", fallback="")
    if extra:
        lines += "\n" + cfg.get("options.extras_require", extra, fallback="")
    return [line.strip() for line in lines.splitlines() if line.strip() and not line.strip().startswith("#")]


def _pip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *args]
    log.debug("wheelhouse.pip", command=args[0])
    return subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "SOURCE_DATE_EPOCH": str(_FIXED_EPOCH), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})


def _fail(proc: subprocess.CompletedProcess[str], what: str) -> BundleError:
    lines = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
    return BundleError(f"{what} failed: {' / '.join(lines[-3:])}")


def download(requirements: Sequence[str], dest: Path, *, constraints: Path | None, cache_dir: Path,
             echo: Echo) -> None:
    """Resolve ``requirements`` for the instance's platform into ``dest`` (only the resolved wheels),
    from the cache alone when it has them all, else from the index (new wheels join the cache)."""
    if not requirements:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    common = ["download", "--quiet", *INSTANCE_PLATFORM, "--dest", str(dest), "--find-links", str(cache_dir)]
    if constraints is not None:
        common += ["--constraint", str(constraints)]
    instance_pins = dest / "instance-constraints.txt"
    instance_pins.write_text("".join(line + "\n" for line in INSTANCE_CONSTRAINTS))
    common += ["--constraint", str(instance_pins)]
    proc = _pip([*common, "--no-index", *requirements])
    if proc.returncode != 0:
        echo(f"  downloading wheels for {len(requirements)} requirement(s) from the index (cached in {cache_dir}) ...")
        for stale in dest.glob("*.whl"):
            stale.unlink()
        proc = _pip([*common, *requirements])
        if proc.returncode != 0:
            raise _fail(proc, f"pip download {' '.join(requirements)}")
    else:
        echo(f"  resolved {len(requirements)} requirement(s) from the wheel cache {cache_dir}")
    for wheel in dest.glob("*.whl"):
        cached = cache_dir / wheel.name
        if not cached.exists():
            shutil.copy2(wheel, cached)


def project_wheel(root: Path, dest: Path) -> Path:
    """The project's own wheel, built from a copy of its packaging files and packages (so the
    worktree gets no build/ or egg-info) with fixed timestamps."""
    with tempfile.TemporaryDirectory(prefix="wheelhouse-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in WORKER_PACKAGING_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        if not (src / "README.md").exists():  # setup.cfg reads it as the long description
            (src / "README.md").write_text("# lambda-autotraining worker\n")
        for package in ("autotraining", "worker", "handlers"):
            if (root / package).is_dir():
                shutil.copytree(root / package, src / package,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
        out = Path(tmp) / "out"
        proc = _pip(["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(src)])
        built = sorted(out.glob("*.whl"))
        if proc.returncode != 0 or not built:
            raise _fail(proc, "building the project's wheel")
        target = dest / built[0].name
        shutil.copy2(built[0], target)
        return target


def pack(wheel_dir: Path, lock: str, out_dir: Path) -> tuple[Path, str, int]:
    """One deterministic tar of ``wheels/*.whl`` and the lock, named by its own sha256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="wheelhouse-", suffix=".tar", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)

    def add(tar: tarfile.TarFile, name: str, path: Path | None, data: bytes = b"") -> None:
        info = tarfile.TarInfo(name)
        info.size = path.stat().st_size if path else len(data)
        info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, 0o644
        if path:
            with path.open("rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info, io.BytesIO(data))

    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, LOCK_NAME, None, lock.encode())
        for wheel in sorted(wheel_dir.glob("*.whl")):
            add(tar, f"{WHEELS_DIR}/{wheel.name}", wheel)
    digest = sha256_file(tmp)
    final = out_dir / f"{digest}.tar"
    tmp.replace(final)
    os.utime(final)
    # a full wheelhouse is ~1 GB: keep the newest few builds, not every one
    for old in sorted(out_dir.glob("*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP_BUILT:]:
        old.unlink(missing_ok=True)
    return final, digest, final.stat().st_size


def build_wheelhouse(requirements: Sequence[str] | None = None, *, root: Path = PROJECT_ROOT,
                     include_project: bool = True, constraints: Path | None = None,
                     cache_dir: Path = CACHE_DIR, echo: Echo = print) -> Wheelhouse:
    """Build the wheelhouse: ``requirements`` (None: the worker's, from setup.cfg) resolved with
    ``constraints`` (None: the project's constraints.txt) for the instance, plus the project's wheel."""
    if requirements is None:
        requirements = worker_requirements(root)
    if constraints is None and (root / "constraints.txt").is_file():
        constraints = root / "constraints.txt"
    echo(f"Building the worker wheelhouse ({len(requirements)} requirement(s)"
         f"{' + the project wheel' if include_project else ''}) ...")
    with tempfile.TemporaryDirectory(prefix="wheelhouse-") as tmp:
        wheel_dir = Path(tmp)
        download(requirements, wheel_dir, constraints=constraints, cache_dir=cache_dir, echo=echo)
        if include_project:
            project_wheel(root, wheel_dir)
        wheels = tuple(sorted((parse_wheel(p) for p in wheel_dir.glob("*.whl")), key=lambda w: w.name))
        if not wheels:
            raise BundleError("the wheelhouse would be empty")
        duplicates = sorted({w.name for w in wheels if sum(v.name == w.name for v in wheels) > 1})
        if duplicates:
            raise BundleError(f"the wheelhouse holds two versions of {', '.join(duplicates)}")
        lock = "".join(w.lock_line() + "\n" for w in wheels)
        path, digest, size = pack(wheel_dir, lock, cache_dir / "built")
    house = Wheelhouse(path=path, key=f"worker/{digest}.tar", sha256=digest, wheels=wheels, size=size)
    echo(f"  {house.describe()}")
    return house


def open_wheelhouse(path: Path) -> Wheelhouse:
    """A wheelhouse tar built earlier (``deploy --wheelhouse FILE``), checked: its lock names every
    wheel it holds with that wheel's sha256, and nothing else."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            lock_member = members.get(LOCK_NAME)
            if lock_member is None:
                raise BundleError(f"{path} is not a wheelhouse: no {LOCK_NAME}")
            lock = tar.extractfile(lock_member).read().decode()  # type: ignore[union-attr]
            hashes = {}
            for name, member in members.items():
                if name.startswith(f"{WHEELS_DIR}/") and name.endswith(".whl"):
                    digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()  # type: ignore[union-attr]
                    hashes[name.split("/", 1)[1]] = (digest, member.size)
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(f"cannot read the wheelhouse {path}: {exc}") from None
    wheels = []
    locked = {line.strip() for line in lock.splitlines() if line.strip()}
    for filename, (digest, size) in sorted(hashes.items()):
        match = _WHEEL_NAME.match(filename)
        if not match:
            raise BundleError(f"{path}: {filename} is not a wheel file name")
        wheel = Wheel(normalize(match["name"]), match["version"], filename, digest, size)
        if wheel.lock_line() not in locked:
            raise BundleError(f"{path}: {filename} does not match {LOCK_NAME} (sha256 {digest})")
        wheels.append(wheel)
    if len(wheels) != len(locked):
        raise BundleError(f"{path}: {LOCK_NAME} names {len(locked)} wheels, the tar holds {len(wheels)}")
    digest = sha256_file(path)
    return Wheelhouse(path=path, key=f"worker/{digest}.tar", sha256=digest,
                      wheels=tuple(sorted(wheels, key=lambda w: w.name)), size=path.stat().st_size)


def present(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    return False


def upload(s3: Any, bucket: str, house: Wheelhouse, echo: Echo = print) -> bool:
    """Put the wheelhouse under its key unless it is there already (multipart, with progress);
    True when it was uploaded."""
    if present(s3, bucket, house.key):
        return False
    sent = [0, 0]  # bytes so far, last reported tenth

    def progress(n: int) -> None:
        sent[0] += n
        tenth = sent[0] * 10 // max(house.size, 1)
        if tenth > sent[1]:
            sent[1] = tenth
            echo(f"  uploading {house.key}: {sent[0] / 1e6:.0f}/{house.size / 1e6:.0f} MB")

    s3.upload_file(str(house.path), bucket, house.key, Callback=progress,
                   ExtraArgs={"ServerSideEncryption": "AES256", "ChecksumAlgorithm": "SHA256"})
    return True


def install_command(release: str) -> list[str]:
    """The one install the instance runs (the user data spells the same line in shell)."""
    return [f"{release}/venv/bin/pip", "install", "--no-index", "--find-links", f"{release}/{WHEELS_DIR}",
            "--require-hashes", "-r", f"{release}/{LOCK_NAME}"]
