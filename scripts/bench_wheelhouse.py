"""Measure the worker's wheelhouse end to end, as the instance uses it.

Builds the real wheelhouse (``autotraining_tools.deploy.wheelhouse.build_wheelhouse``: the worker's
pinned requirements for AL2023/cp311/x86_64 + the project wheel; wheels cached under
``.cache/wheelhouse/``), builds it again (warm cache, must give the same key), then does what the
user data does: check the tar against its key, unpack, ``python3.11 -m venv``, ``pip install
--no-index --find-links wheels --require-hashes -r requirements.lock`` (no pip configuration, no
index), and imports TensorFlow, tensorflowjs and the worker from that venv. Prints numbers, no
pass/fail. The first build downloads ~900 MB when the cache is empty; the install needs ~3 GB.

    .venv/bin/python scripts/bench_wheelhouse.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", default=None, help="install into this directory and keep it (default: a temp dir)")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable,
                        help="the interpreter the instance's venv is made with (python3.11)")
    args = parser.parse_args()

    from autotraining_tools.deploy.wheelhouse import LOCK_NAME, WHEELS_DIR, build_wheelhouse, install_command

    t = time.perf_counter()
    house = build_wheelhouse(echo=lambda s: print(s, flush=True))
    first = time.perf_counter() - t
    t = time.perf_counter()
    again = build_wheelhouse(echo=lambda s: None)
    warm = time.perf_counter() - t
    print(f"build: {first:.1f} s (this run's cache state), again {warm:.1f} s with a warm cache; "
          f"same key: {again.key == house.key}")
    print(f"wheelhouse: {len(house.wheels)} wheels, {house.size / 1e6:.0f} MB, key {house.key}")

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="wheelhouse-install-"))
    try:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        t = time.perf_counter()
        digest = hashlib.sha256(house.path.read_bytes()).hexdigest()
        with tarfile.open(house.path) as tar:
            tar.extractall(root, filter="data")
        unpack = time.perf_counter() - t
        print(f"check + unpack: {unpack:.1f} s; tar sha256 matches its key: {house.key == f'worker/{digest}.tar'}; "
              f"{len(list((root / WHEELS_DIR).glob('*.whl')))} wheels, {(root / LOCK_NAME).exists() and 'lock present'}")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PIP_CONFIG_FILE": "/dev/null"}  # no index, no config
        t = time.perf_counter()
        subprocess.run([args.python, "-m", "venv", str(root / "venv")], check=True, env=env)
        venv = time.perf_counter() - t
        t = time.perf_counter()
        proc = subprocess.run([*install_command(str(root)), "-q", "--no-cache-dir"], env=env, capture_output=True,
                              text=True)
        install = time.perf_counter() - t
        print(f"venv: {venv:.1f} s; pip install --no-index --require-hashes: {install:.1f} s, exit {proc.returncode}")
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return 1
        t = time.perf_counter()
        probe = subprocess.run([str(root / "venv/bin/python"), "-c",
                                "import tensorflow, tensorflowjs, worker.round, autotraining.predictor; "
                                "print(tensorflow.__version__, tensorflowjs.__version__)"],
                               env={**env, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                                    "TFDF_DISABLE_WELCOME_MESSAGE": "1"}, capture_output=True, text=True)
        print(f"import tensorflow, tensorflowjs, worker: {time.perf_counter() - t:.1f} s, exit {probe.returncode}: "
              f"{(probe.stdout.strip() or probe.stderr.strip().splitlines()[-1:])}")
        units = sorted(p.name for p in root.glob("venv/lib/python3.11/site-packages/worker/systemd/*.service"))
        print(f"systemd units in the installed package: {units}")
        print(f"total on the instance (unpack + venv + install): {unpack + venv + install:.1f} s")
        return probe.returncode
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
