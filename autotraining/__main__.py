"""``python -m autotraining``: the same as the ``autotraining`` console command."""
from __future__ import annotations

import sys

from autotraining.cli import main

sys.exit(main())
