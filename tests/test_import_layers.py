"""The import layers hold: ``lint-imports`` with the repository's ``.importlinter`` contracts (handlers
never import the worker and back; the core never imports TensorFlow, the worker or the handlers;
nothing the Lambda functions import reaches the tooling)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_every_import_layer_contract_is_kept() -> None:
    done = lint_imports(ROOT / ".importlinter")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in done.stdout


def test_an_import_across_a_forbidden_layer_is_reported(tmp_path: Path) -> None:
    # the same tool on a contract today's code breaks (every handler imports the AWS factory)
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_packages =\n    autotraining\n    handlers\n\n"
                      "[importlinter:contract:x]\nname = handlers without aws\ntype = forbidden\n"
                      "source_modules =\n    handlers.upload\nforbidden_modules =\n    autotraining.aws\n")
    done = lint_imports(config)
    assert done.returncode == 1 and "handlers without aws BROKEN" in done.stdout
    assert "handlers.upload -> autotraining.aws" in done.stdout
