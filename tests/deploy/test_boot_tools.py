"""The instance's boot path checked by the real tools: shellcheck on the user data script, systemd-analyze on the unit."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from autotraining_tools.deploy.template import load_template

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "worker" / "systemd" / "autotraining-worker.service"
INSTALLED_PYTHON = "/opt/autotraining/current/venv/bin/python"


def user_data_script() -> str:
    """The shell part of the worker's user data, with CloudFormation's ${...} substitutions filled in."""
    text = load_template()["Resources"]["WorkerInstance"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    body = text.split("Content-Type: text/x-shellscript", 1)[1].split("\n", 1)[1]
    script = body.split("--==AUTOTRAINING==--", 1)[0].strip() + "\n"
    # ${Name} and ${AWS::Region} are CloudFormation's (resolved before the instance sees the script);
    # ${!x} would be a literal ${x}. Fill them with plain words so shellcheck sees what bash will.
    script = re.sub(r"\$\{!([^}]+)\}", r"${\1}", script)
    return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: "cfn-" + m.group(1).replace("::", "-").lower(), script)


def test_user_data_script_passes_shellcheck(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    script = tmp_path / "user-data.sh"
    script.write_text(user_data_script())
    assert script.read_text().startswith("#!/bin/bash\n")
    out = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(script)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_worker_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify also checks that ExecStart's program exists; on a developer machine the release's
    # python is at another path, so the copy points at this python (every other line is as shipped).
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_PYTHON, sys.executable))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr
