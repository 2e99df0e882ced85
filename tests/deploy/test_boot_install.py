"""The user data's install block, run for real: the shell lines of the template (not a copy) on a
wheelhouse of the project wheel and its install_requires, with ``aws s3 cp`` replaced by a local
copy and the root paths moved under a temp dir. No pip configuration and no index: the install
works from the wheelhouse alone, and a tar whose bytes differ from its key installs nothing."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_boot_tools import user_data_script

from autotraining_tools.deploy.wheelhouse import CACHE_DIR, Wheelhouse, build_wheelhouse, worker_requirements

# the instance's interpreter; the project requires 3.11, so this test's own python is one too
PYTHON311 = shutil.which("python3.11", path="/usr/bin:/usr/local/bin") or sys.executable
pytestmark = pytest.mark.slow


def install_block() -> str:
    """From ``if [ ... installed-artifact ... ]`` to its ``fi``, as the instance runs it."""
    lines = user_data_script().splitlines()
    start = next(i for i, line in enumerate(lines) if "installed-artifact" in line and line.startswith("if "))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "fi")
    block = "\n".join(line for line in lines[start:end + 1] if not line.strip().startswith("dnf "))
    return block.replace("/opt/autotraining", "$ROOT/opt/autotraining").replace("/etc/systemd/", "$ROOT/etc/systemd/")


@pytest.fixture(scope="module")
def core_house() -> Wheelhouse:
    # the project wheel and what it requires (boto3, numpy, ...; ~30 MB, cached in .cache/wheelhouse)
    return build_wheelhouse(worker_requirements(extra=None), cache_dir=CACHE_DIR, echo=lambda _: None)


def run_boot(tmp_path: Path, tar: Path, key: str) -> subprocess.CompletedProcess[str]:
    store, bin_dir, root = tmp_path / "s3", tmp_path / "bin", tmp_path / "root"
    for d in (store, bin_dir, root / "opt/autotraining/releases", root / "etc/systemd/system"):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copy(tar, store / Path(key).name)
    aws = bin_dir / "aws"  # `aws s3 cp [options] s3://bucket/key DEST` → a copy from the local store
    aws.write_text(f'#!/bin/bash\nset -eu\nsrc="${{@: -2:1}}"; cp "{store}/$(basename "$src")" "${{@: -1}}"\n')
    aws.chmod(0o755)
    (bin_dir / "python3.11").symlink_to(PYTHON311)
    script = f"set -euo pipefail\nROOT={root}\nARTIFACT=s3://cfn-codebucket/{key}\n{install_block()}\n"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=480)


def test_the_user_data_installs_the_wheelhouse_offline_and_the_unit(core_house: Wheelhouse, tmp_path: Path) -> None:
    proc = run_boot(tmp_path, core_house.path, core_house.key)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = tmp_path / "root"
    current = root / "opt/autotraining/current"
    assert current.resolve().name == core_house.sha256
    assert (root / "opt/autotraining/installed-artifact").read_text().strip() == f"s3://cfn-codebucket/{core_house.key}"
    assert (root / "etc/systemd/system/autotraining-worker.service").is_file()
    out = subprocess.run([str(current / "venv/bin/python"), "-c",
                          "import autotraining.predictor, boto3, numpy; print(numpy.__version__)"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "2.1.3", out.stderr


def test_a_tar_whose_bytes_differ_from_its_key_installs_nothing(core_house: Wheelhouse, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(core_house.path.read_bytes() + b"\0" * 512)  # still a valid tar, other bytes
    proc = run_boot(tmp_path, tampered, core_house.key)
    assert proc.returncode != 0
    assert re.search(r"sha256sum: WARNING: 1 computed checksum did NOT match|FAILED", proc.stdout + proc.stderr)
    root = tmp_path / "root"
    assert not (root / "opt/autotraining/current").exists()
    assert not (root / "opt/autotraining/installed-artifact").exists()
    assert not list((root / "etc/systemd/system").iterdir())
