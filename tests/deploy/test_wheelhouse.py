"""The worker's wheelhouse: built for the instance's platform, locked with sha256 hashes, installed
offline by pip with --require-hashes exactly as the user data does, and a tampered wheel refused."""
from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from autotraining_tools.deploy.bundle import BundleError
from autotraining_tools.deploy.template import load_template
from autotraining_tools.deploy.wheelhouse import (
    LOCK_NAME,
    Wheelhouse,
    build_wheelhouse,
    install_command,
    open_wheelhouse,
    sha256_file,
    worker_requirements,
)

SMALL = ["six==1.17.0"]  # the pin constraints.txt holds; one small pure-Python wheel


@pytest.fixture(scope="module")
def six_house(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    return build_wheelhouse(SMALL, include_project=False, cache_dir=tmp_path_factory.mktemp("cache"),
                            echo=lambda _: None)


def unpack(house: Wheelhouse, into: Path) -> Path:
    with tarfile.open(house.path) as tar:
        tar.extractall(into, filter="data")
    return into


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    return path


def install(release: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(install_command(str(release)), capture_output=True, text=True, timeout=300)


def user_data() -> str:
    return load_template()["Resources"]["WorkerInstance"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]


def test_the_lock_names_every_wheel_with_its_sha256_and_the_key_is_the_tars_hash(six_house: Wheelhouse,
                                                                                  tmp_path: Path) -> None:
    assert six_house.key == f"worker/{sha256_file(six_house.path)}.tar"
    release = unpack(six_house, tmp_path)
    wheels = sorted((release / "wheels").glob("*.whl"))
    assert [w.name for w in wheels] == ["six-1.17.0-py2.py3-none-any.whl"]
    assert (release / LOCK_NAME).read_text() == f"six==1.17.0 --hash=sha256:{sha256_file(wheels[0])}\n"


@pytest.mark.slow
def test_a_fresh_venv_installs_the_wheelhouse_offline_with_hashes(six_house: Wheelhouse, tmp_path: Path) -> None:
    release = unpack(six_house, tmp_path)
    fresh_venv(release / "venv")
    proc = install(release)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = subprocess.run([str(release / "venv/bin/python"), "-c", "import six; print(six.__version__)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1.17.0"


@pytest.mark.slow
def test_pip_refuses_a_tampered_wheel(six_house: Wheelhouse, tmp_path: Path) -> None:
    release = unpack(six_house, tmp_path)
    wheel = next((release / "wheels").glob("six-*.whl"))
    # a still-valid wheel with one module changed: what an attacker who could write the bucket would ship
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\nimport os  # injected\n" if info.filename == "six.py" else data)
    wheel.write_bytes(buf.getvalue())
    fresh_venv(release / "venv")
    proc = install(release)
    assert proc.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in proc.stderr and "six" in proc.stderr
    assert not list((release / "venv").glob("lib/python*/site-packages/six.py"))


def test_a_wheelhouse_whose_wheel_differs_from_its_lock_is_refused_before_deploy(six_house: Wheelhouse,
                                                                                 tmp_path: Path) -> None:
    release = unpack(six_house, tmp_path / "x")
    wheel = next((release / "wheels").glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        tar.add(release / LOCK_NAME, LOCK_NAME)
        tar.add(wheel, f"wheels/{wheel.name}")
    with pytest.raises(BundleError, match="does not match requirements.lock"):
        open_wheelhouse(bad)
    assert open_wheelhouse(six_house.path) == six_house


def test_the_project_wheel_carries_the_worker_and_its_systemd_unit(project_wheelhouse: Wheelhouse,
                                                                   tmp_path: Path) -> None:
    release = unpack(project_wheelhouse, tmp_path)
    (wheel,) = (release / "wheels").glob("lambda_autotraining-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "worker/systemd/autotraining-worker.service" in names and "worker/__main__.py" in names
    # the user data installs the unit from the installed package
    assert "site-packages/worker/systemd/*.service" in user_data()
    # built twice from the same files: the same bytes, the same key (nothing re-uploaded)
    again = build_wheelhouse([], cache_dir=tmp_path / "c", echo=lambda _: None)
    assert again.key == project_wheelhouse.key


def test_the_worker_requirements_are_setup_cfgs_install_requires_and_worker_extra() -> None:
    names = {re.split(r"[=<>~ ]", r)[0].lower().replace("_", "-") for r in worker_requirements()}
    assert {"boto3", "numpy", "tensorflow", "tensorflowjs", "tf-keras", "h5py"} <= names
    assert not names & {"moto", "pytest", "river"}  # dev extras stay off the instance


def test_the_user_data_installs_only_from_the_wheelhouse_with_hashes() -> None:
    script = user_data()
    pip_lines = [line.strip() for line in script.splitlines() if "pip" in line and "install" in line
                 and not line.strip().startswith("#")]
    assert len(pip_lines) == 1  # one boot path, one install
    (line,) = pip_lines
    for flag in ("--no-index", "--require-hashes", '--find-links "$RELEASE/wheels"', '-r "$RELEASE/requirements.lock"'):
        assert flag in line, flag
    assert "-c " not in line and "[worker]" not in line  # no resolution against an index at boot
    assert 'sha256sum --check' in script  # the tar must match its content-addressed key
