"""``POST /predict``: feature rows in, per row the label and every label's probability out (numpy, no TensorFlow).

Body: a JSON array of feature objects or ``{"rows": [...]}``, validated like uploads (labels not
needed; same ``{"message", "errors": [...], "error_count"}`` on 400/413; 415 for a non-JSON body). Answer:
``{"version": v, "predictions": [{"label": l, "probabilities": {label: p}}]}``; 503 before the first
model is published. The model is cached per container (``autotraining.serving.ModelCache``).
"""
from __future__ import annotations

import os

# One BLAS thread: a Lambda has one or two vCPUs, and OpenBLAS's thread pool on a busy CPU made
# a 100k-row forward pass 5-8x slower (scripts/bench_infer.py). Only effective before numpy loads,
# which is the case when this module is the function's entry point.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import functools  # noqa: E402
from typing import Any  # noqa: E402

from autotraining import api  # noqa: E402
from autotraining.aws import Aws  # noqa: E402
from autotraining.aws import shared as aws_for  # noqa: E402
from autotraining.schema import load_schema  # noqa: E402
from autotraining.serving import ModelCache, predict_rows, read_rows  # noqa: E402
from autotraining.settings import Settings  # noqa: E402


@api.answers_errors(cors=True)
def handle(event: dict[str, Any], aws: Aws, cache: ModelCache) -> dict[str, Any]:
    """The handler with its AWS clients and model cache passed in."""
    api.require_method(event, "POST")
    schema = load_schema(aws.settings.schema_file)
    rows = read_rows(api.json_body(event), schema)
    return api.json_response(200, predict_rows(rows, schema, cache.get()), cors=True)


@functools.lru_cache(maxsize=4)
def _container(settings: Settings) -> tuple[Aws, ModelCache]:
    aws = aws_for(settings)
    return aws, ModelCache.for_aws(aws)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    aws, cache = _container(Settings.from_env())
    return handle(event, aws, cache)
