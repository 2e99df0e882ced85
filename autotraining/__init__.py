"""lambda-autotraining core: schema, validation, record log, model registry, settings and AWS wiring.

This package is shared by the Lambda handlers (``handlers/``) and the instance worker
(``worker/``). It never imports TensorFlow, so it can ship in a Lambda bundle beside numpy.
"""
from __future__ import annotations

__version__ = "0.1.0"
