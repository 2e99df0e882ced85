"""Measure the deploy side: artifact builds and sizes, and the embedded run's provision.

Prints numbers (no pass/fail): Lambda bundle and worker artifact build time and sizes; the
time of ``provision`` (the template deployed into moto) in-process and over a moto server,
first call in the process and warm.

    .venv/bin/python scripts/bench_deploy.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
os.environ.pop("AWS_ENDPOINT_URL", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="warm provision runs to time")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from moto import mock_aws
    from moto.server import ThreadedMotoServer

    from autotraining.aws import Aws
    from autotraining.settings import Settings
    from autotraining_tools.deploy import bundle
    from autotraining_tools.local.provision import provision

    t = time.perf_counter()
    code = bundle._build_lambda_bundle(bundle.PROJECT_ROOT, True, None)
    print(f"Lambda bundle: built in {time.perf_counter() - t:.2f} s; {code.describe()}")
    print(f"  limits: {code.packed_bytes / bundle.LAMBDA_ZIPPED_LIMIT:.0%} of 50 MiB zipped, "
          f"{code.unpacked_bytes / bundle.LAMBDA_UNZIPPED_LIMIT:.0%} of 250 MiB unzipped")
    t = time.perf_counter()
    worker = bundle.worker_artifact()
    print(f"Worker artifact: built in {time.perf_counter() - t:.2f} s; {worker.describe()}")

    def in_process() -> float:
        with mock_aws():
            t0 = time.perf_counter()
            provision(Aws(Settings(region="us-east-1")))
            return time.perf_counter() - t0

    first = in_process()
    warm = [in_process() for _ in range(args.repeat)]
    print(f"provision, in-process moto: first {first:.2f} s, warm median {statistics.median(warm):.2f} s "
          f"({', '.join(f'{w:.2f}' for w in warm)})")

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        times = []
        for i in range(args.repeat + 1):
            t0 = time.perf_counter()
            provision(Aws(Settings(region="us-east-1", endpoint_url=f"http://{host}:{port}")), prefix=f"bench{i}")
            times.append(time.perf_counter() - t0)
        print(f"provision, moto server over HTTP: first {times[0]:.2f} s, warm median {statistics.median(times[1:]):.2f} s")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
