"""`autotraining --version`: the package version, from the console command, without a subcommand."""
from __future__ import annotations

import os
import subprocess
import sys

import autotraining


def test_version_prints_the_package_version_and_exits_0() -> None:
    done = subprocess.run([sys.executable, "-m", "autotraining_tools", "--version"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"autotraining {autotraining.__version__}"
    assert autotraining.__version__.count(".") == 2
