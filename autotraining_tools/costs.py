"""What a workload costs a month: this design per service, beside two other ways to run it.

``estimate(workload)`` counts the requests, bytes and instance seconds a month of the workload
makes on each service (from the code's own call pattern, one line per item below) and prices
them with ``autotraining_tools.prices`` (one dated table). Side by side, the same ingest path with:

- a *managed training job per round* (SageMaker training, per-second billing with its minimum,
  instead of the persistent instance), and
- the *2019 design*: a fresh instance per stream batch that scans the whole table and retrains
  on all of history (boot + full retrain billed per batch).

Round time comes from ``scripts/bench_training.py`` / ``scripts/bench_scale.py`` measurements on
a 2-core machine: a fixed part plus a per-row training cost (``ROUND_FIXED_S``, ``TRAIN_S_PER_ROW``).
Estimates, not bills: free tiers, data transfer, CloudWatch and taxes are left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from autotraining_tools import prices

DAYS_PER_MONTH = 30
# Measured (README "Training", scripts/bench_training.py): 2,000 new + 5,000 replayed rows → 0.90 s
# round; a full retrain of 1,000,000 rows (12 epochs) → 86 s, i.e. 86 µs per row.
TRAIN_S_PER_ROW = 86e-6
ROUND_FIXED_S = 0.30
BOOT_S = 60.0  # EC2 start to the worker polling (instance boot + TensorFlow import), typical
MANAGED_JOB_STARTUP_S = 30.0  # billed container start + image pull + import, per training job
SEGMENT_RECORDS = 500  # StreamBatchSize default: records per stream batch = per segment
MAX_SEGMENTS_PER_ROUND = 50
RECORD_ITEM_BYTES = 250  # a DynamoDB record item (4 features, label, id, created)
RECORD_LOG_BYTES = 80  # a record in a gzip'd JSON Lines segment
SCHEDULE_TICKS_PER_DAY = 288  # rate(5 minutes)


@dataclass(frozen=True)
class Workload:
    """A month of the system: records in, rounds, the instance and the deploy parameters that matter."""

    records_per_day: int
    rounds_per_day: int | None = None  # None: what the schedule and the queue give (see ``rounds``)
    instance_type: str = "t3.small"
    records_per_request: int = 500
    reservoir: int = 5000
    idle_grace_s: float = 120.0
    root_volume_gb: int = 20
    retained_days: int = 30  # records table + log kept (the history the 2019 design retrains on)

    @property
    def rounds(self) -> int:
        """Rounds a day: given, or one per schedule tick with work (at most), enough for the volume."""
        if self.rounds_per_day is not None:
            return self.rounds_per_day
        segments = math.ceil(self.records_per_day / SEGMENT_RECORDS)
        return max(min(SCHEDULE_TICKS_PER_DAY, segments), math.ceil(segments / MAX_SEGMENTS_PER_ROUND))


@dataclass(frozen=True)
class Estimate:
    """Monthly USD per service for this design, and the totals of the alternatives."""

    workload: Workload
    services: dict[str, float]
    round_seconds: float
    instance_hours: float
    managed_job_total: float
    design_2019_total: float
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        return sum(self.services.values())


def round_seconds(new_records: float, reservoir: int) -> float:
    return ROUND_FIXED_S + (new_records + reservoir) * TRAIN_S_PER_ROW


def estimate(w: Workload) -> Estimate:
    if w.instance_type not in prices.EC2_PER_HOUR:
        raise ValueError(f"no price for instance type {w.instance_type!r}; known: {', '.join(prices.EC2_PER_HOUR)}")
    m = DAYS_PER_MONTH
    n = w.records_per_day * m
    rounds = w.rounds * m
    segments = math.ceil(w.records_per_day / SEGMENT_RECORDS) * m
    requests = math.ceil(w.records_per_day / w.records_per_request) * m
    per_round = n / rounds if rounds else 0.0
    round_s = round_seconds(per_round, w.reservoir)
    segs_per_round = segments / rounds if rounds else 0.0

    ingest: dict[str, float] = {}
    ingest["API Gateway (HTTP API requests)"] = requests * prices.HTTP_API_PER_REQUEST
    lambda_gb_s = (requests * 0.30 * 0.25 + segments * 0.50 * 0.25 + SCHEDULE_TICKS_PER_DAY * m * 0.2 * 0.125
                   + requests * 0.05 * 0.5)  # upload, stream, starter, + model proxy/infer reads ~ a tenth
    ingest["Lambda (upload, stream, starter)"] = ((requests + segments + SCHEDULE_TICKS_PER_DAY * m)
                                                  * prices.LAMBDA_PER_REQUEST + lambda_gb_s * prices.LAMBDA_PER_GB_SECOND)
    # Each record: one write, one eventually consistent read (the upload skips ids already stored).
    stored_gb = w.records_per_day * w.retained_days * RECORD_ITEM_BYTES / 1e9
    ingest["DynamoDB (record writes, stream reads, storage)"] = (
        n * prices.DYNAMODB_PER_WRU + n * 0.5 * prices.DYNAMODB_PER_RRU
        + segments * prices.DYNAMODB_STREAM_READ_BY_LAMBDA + stored_gb * prices.DYNAMODB_PER_GB_MONTH)
    log_gb = w.records_per_day * w.retained_days * RECORD_LOG_BYTES / 1e9
    ingest["S3 (log segments)"] = segments * (prices.S3_PER_PUT + prices.S3_PER_GET) + log_gb * prices.S3_PER_GB_MONTH
    # send + the stream's depth read per segment, the worker's receive/delete/heartbeat share, the starter's ticks
    ingest["SQS"] = (segments * 2.4 + SCHEDULE_TICKS_PER_DAY * m) * prices.SQS_PER_REQUEST

    services = dict(ingest)
    # Per round: latest + round item (~3 WRU) + one mark per segment; a few reads.
    services["DynamoDB (registry commits)"] = (rounds * (3 + segs_per_round) * prices.DYNAMODB_PER_WRU
                                               + rounds * (5 + segs_per_round) * prices.DYNAMODB_PER_RRU)
    # Per round: state put + 4 staged files + 4 copies + listings; state and model get.
    services["S3 (models, state)"] = rounds * (11 * prices.S3_PER_PUT + 3 * prices.S3_PER_GET)
    starts = min(rounds, SCHEDULE_TICKS_PER_DAY * m)
    instance_s = min(86400.0 * m, starts * (BOOT_S + w.idle_grace_s) + rounds * round_s)
    services[f"EC2 ({w.instance_type}, {instance_s / 3600:.1f} h)"] = (
        instance_s / 3600 * prices.EC2_PER_HOUR[w.instance_type])
    services[f"EBS ({w.root_volume_gb} GB gp3 root volume)"] = w.root_volume_gb * prices.EBS_GP3_PER_GB_MONTH

    base = sum(ingest.values()) + services["DynamoDB (registry commits)"] + services["S3 (models, state)"]
    job_s = max(prices.SAGEMAKER_MINIMUM_SECONDS, MANAGED_JOB_STARTUP_S + round_s)
    managed = base + rounds * job_s / 3600 * prices.SAGEMAKER_TRAINING_PER_HOUR["ml.m5.large"]

    # 2019: every stream batch launches an instance that scans the table and retrains on all of it.
    history = w.records_per_day * w.retained_days
    retrain_s = ROUND_FIXED_S + history * TRAIN_S_PER_ROW
    billed_2019 = max(prices.EC2_MINIMUM_SECONDS, BOOT_S + retrain_s)
    scan_rru = history * RECORD_ITEM_BYTES / 4096 * 0.5
    design_2019 = (sum(ingest.values()) + segments * billed_2019 / 3600 * prices.EC2_PER_HOUR[w.instance_type]
                   + segments * scan_rru * prices.DYNAMODB_PER_RRU)
    notes = (f"prices: {prices.REGION} on-demand list prices as of {prices.AS_OF} (autotraining_tools/prices.py)",
             f"{w.rounds:,} rounds/day of ~{per_round:,.0f} new records, {round_s:.1f} s each (measured rate)",
             f"2019 design: {segments // m:,} instances/day, each {billed_2019:,.0f} s (boot + retrain on "
             f"{history:,} records) and a full table scan")
    return Estimate(workload=w, services=services, round_seconds=round_s, instance_hours=instance_s / 3600,
                    managed_job_total=managed, design_2019_total=design_2019, notes=notes)


def format_estimate(e: Estimate) -> str:
    width = max(len(k) for k in e.services) + 2
    lines = [f"Monthly estimate for {e.workload.records_per_day:,} records/day ({DAYS_PER_MONTH} days)", ""]
    lines += [f"{name:<{width}} ${usd:>12,.2f}" for name, usd in e.services.items()]
    lines += [f"{'total (this design)':<{width}} ${e.total:>12,.2f}", "",
              "Same workload, side by side:",
              f"{'  this design (persistent instance, incremental rounds)':<60} ${e.total:>12,.2f}",
              f"{'  a managed training job per round (ml.m5.large)':<60} ${e.managed_job_total:>12,.2f}",
              f"{'  2019 design (fresh instance + full retrain per batch)':<60} ${e.design_2019_total:>12,.2f}", ""]
    lines += [f"note: {n}" for n in e.notes]
    return "\n".join(lines) + "\n"


# Worker memory (scripts/bench_scale.py measures it): the process with TensorFlow loaded running a
# round with the default reservoir peaks near WORKER_BASE_MIB whatever the history; each reservoir
# row adds its float64 features + label + id hash, about ROW_COPIES times over during a round
# (the sample, the concatenated training set, its held-out split, TensorFlow's float32 copy).
WORKER_BASE_MIB = 1000.0
ROW_COPIES = 6
MEMORY_HEADROOM = 0.85  # of the instance's memory; the rest is the OS and the CloudWatch agent


def worker_peak_mib(reservoir: int, n_features: int, new_rows: int = SEGMENT_RECORDS * MAX_SEGMENTS_PER_ROUND) -> float:
    """Estimated peak RSS of a round (MiB) for a reservoir of ``reservoir`` rows of ``n_features``."""
    return WORKER_BASE_MIB + (reservoir + new_rows) * (8 * n_features + 16) * ROW_COPIES / 2**20


def memory_warning(instance_type: str, reservoir: int, n_features: int) -> str | None:
    """A sentence when a round would not fit the instance's memory (None when it fits)."""
    gib = prices.EC2_MEMORY_GIB.get(instance_type)
    if gib is None:
        return (f"no memory figure for instance type {instance_type!r} in autotraining_tools/prices.py: "
                f"cannot check that ReservoirSize {reservoir:,} × {n_features} features fits")
    need, have = worker_peak_mib(reservoir, n_features), gib * 1024 * MEMORY_HEADROOM
    if need <= have:
        return None
    return (f"ReservoirSize {reservoir:,} × {n_features} features needs about {need:,.0f} MiB at a round's peak, "
            f"more than the {have:,.0f} MiB a {instance_type} ({gib:g} GiB) leaves the worker: choose a larger "
            f"InstanceType or a smaller ReservoirSize")
