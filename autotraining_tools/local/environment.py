"""The process environment the embedded run, its tests and its benchmarks need before boto3 is used.

Dummy credentials and a region (moto accepts any), the setting that keeps DynamoDB Streams calls on
moto's hosts (botocore otherwise sends them to an account-specific host moto does not intercept;
see shared NOTES.md), no leftover ``AWS_ENDPOINT_URL``, and legacy Keras for anything TensorFlow
exports (TensorFlow.js 4.22 loads only its format). A leaf module: it imports nothing of ours.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def use_emulator_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set what is missing of ``DEFAULTS``, force the streams setting, drop ``AWS_ENDPOINT_URL``."""
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)
    environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    environ.pop("AWS_ENDPOINT_URL", None)
