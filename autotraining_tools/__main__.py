"""``python -m autotraining_tools``: the same as the ``autotraining`` console command."""
from __future__ import annotations

import sys

from autotraining_tools.cli import main

sys.exit(main())
