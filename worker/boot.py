"""The instance's boot step: install the worker artifact named in the settings when it changed.

Interface (``python -m worker.boot --root /opt/autotraining``, the systemd unit's ExecStartPre):

- reads ``AUTOTRAINING_WORKER_ARTIFACT`` (``s3://bucket/key`` of a ``.tar.gz`` holding ``src/``,
  the project source with ``constraints.txt``) from the environment file;
- compares it with ``<root>/installed-artifact``; when equal, exits 0 at once;
- otherwise downloads it, unpacks it to ``<root>/releases/<name>/``, builds
  ``<root>/releases/<name>/venv`` (``pip install -c src/constraints.txt src[worker]``), points
  ``<root>/current`` at the release (atomic symlink swap) and records the key.

A failed install exits 0 when a release is already installed (the old worker keeps running;
the next boot retries) and 1 when there is none (systemd's Restart=on-failure retries).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from autotraining.aws import Aws
from autotraining.logs import configure, get_logger
from autotraining.settings import Settings

log = get_logger("worker.boot")

Installer = Callable[[Path, str], None]


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValueError(f"worker artifact must be s3://bucket/key, not {url!r}")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def build_venv(release: Path, python: str) -> None:
    """The release's virtualenv with the worker extras, pinned by the release's constraints."""
    venv = release / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir", "-c",
                    str(release / "src" / "constraints.txt"), f"{release / 'src'}[worker]"], check=True)


def install_if_changed(s3: object, artifact: str, root: Path, python: str = sys.executable,
                       installer: Installer = build_venv) -> bool:
    """Install ``artifact`` under ``root`` unless it is the installed one; True when it installed."""
    marker = root / "installed-artifact"
    if marker.exists() and marker.read_text().strip() == artifact:
        log.info("boot.up_to_date", artifact=artifact)
        return False
    bucket, key = parse_s3_url(artifact)
    name = Path(key).name.removesuffix(".tar.gz").removesuffix(".tgz") or "release"
    release = root / "releases" / name
    release.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=release, suffix=".tar.gz", delete=False) as tmp:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
        for chunk in iter(lambda: body.read(1 << 20), b""):
            tmp.write(chunk)
    with tarfile.open(tmp.name, "r:gz") as tar:
        tar.extractall(release, filter="data")
    os.unlink(tmp.name)
    installer(release, python)
    link = root / "current"
    staging_link = root / "current.new"
    if staging_link.is_symlink() or staging_link.exists():
        staging_link.unlink()
    staging_link.symlink_to(release)
    os.replace(staging_link, link)  # atomic swap: a crash leaves the old or the new release, never none
    marker.write_text(artifact + "\n")
    log.info("boot.installed", artifact=artifact, release=str(release))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.boot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/opt/autotraining", help="install root (releases/, current, marker)")
    parser.add_argument("--python", default="python3.11", help="interpreter that builds a release's venv")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure(settings.log_format)
    if not settings.worker_artifact:
        log.info("boot.no_artifact")
        return 0
    root = Path(args.root)
    try:
        install_if_changed(Aws(settings).s3, settings.worker_artifact, root, args.python)
    except Exception as exc:  # noqa: BLE001 - decide below whether the old release can run
        installed = (root / "current").exists()
        log.error("boot.install_failed", artifact=settings.worker_artifact, error=str(exc), keeping_old=installed)
        return 0 if installed else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
