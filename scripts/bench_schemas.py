"""Typed schemas on real tables: the worker's rounds vs scikit-learn baselines on the same split.

Two data sets that packages ship (nothing generated here), each with its own schema file:

- **penguins** (``palmerpenguins``, 344 rows): species from island (category), four body
  measurements (numbers, each missing twice), sex (category, missing 11 times) and year;
- **phishing** (``river.datasets.Phishing``'s shipped CSV, UCI "Website Phishing", 1,250 rows):
  phishing or not from seven three-level traits (categories legitimate/suspicious/phishy, the
  data set's 0/0.5/1) and two yes/no traits (booleans, the data set's 0/1).

For each: a stratified split (``--test-share``, seeded); the training rows, in a shuffled order,
go through the real worker (``worker.loop.Worker`` on moto's in-process mock: log segments →
rounds → published model) in ``--rounds`` segments; the serving model (numpy predictor over the
published TF.js files, with the model's own encoding) answers the test rows through
``POST /predict``'s code path. On the same rows: scikit-learn full fits of one-hot + median
imputation (with missing indicators) + ``HistGradientBoostingClassifier``, and the same
preprocessing + standard scaling + ``MLPClassifier``. Goal: the worker within 1 point of the
better baseline. Accuracy is averaged over ``--seeds`` splits (each test set is small).

    .venv/bin/python scripts/bench_schemas.py [--seeds 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from autotraining_tools.local.environment import use_emulator_environment  # noqa: E402

use_emulator_environment()

from autotraining.schema import Schema, Value, load_schema  # noqa: E402

SCHEMAS = ROOT / "autotraining" / "schemas"
LEVELS = {0.0: "legitimate", 0.5: "suspicious", 1.0: "phishy"}


def _clean(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def penguins() -> tuple[Schema, list[dict[str, Value]], list[str]]:
    import palmerpenguins

    schema = load_schema(str(SCHEMAS / "penguins.json"))
    df = palmerpenguins.load_penguins()
    rows, labels = [], []
    for rec in df.to_dict("records"):
        row: dict[str, Value] = {}
        for f in schema.features:
            v = _clean(rec[f.name])
            row[f.name] = None if v is None else (str(v) if f.type == "category" else float(v))
        rows.append(row)
        labels.append(str(rec["species"]))
    return schema, rows, labels


def phishing() -> tuple[Schema, list[dict[str, Value]], list[str]]:
    import pandas as pd
    import river.datasets

    schema = load_schema(str(SCHEMAS / "phishing.json"))
    df = pd.read_csv(Path(river.datasets.__file__).parent / "phishing.csv.gz")
    rows: list[dict[str, Value]] = []
    labels: list[str] = []
    for rec in df.to_dict("records"):
        rows.append({f.name: (bool(rec[f.name]) if f.type == "boolean" else LEVELS[float(rec[f.name])])
                     for f in schema.features})
        labels.append("phishing" if int(rec["is_phishing"]) else "legitimate")
    return schema, rows, labels


def split(labels: list[str], test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=test_share, random_state=seed, stratify=labels)
    return np.asarray(train), np.asarray(test)


def baselines(schema: Schema, rows: list[dict[str, Value]], labels: list[str], train: np.ndarray,
              test: np.ndarray, seed: int) -> dict[str, float]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.DataFrame([{k: (np.nan if v is None else (float(v) if isinstance(v, bool) else v))
                        for k, v in r.items()} for r in rows])
    cats = [f.name for f in schema.features if f.type == "category"]
    nums = [f.name for f in schema.features if f.type != "category"]
    y = np.array(labels)

    def prep() -> ColumnTransformer:
        return ColumnTransformer([
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                  OneHotEncoder(handle_unknown="ignore", sparse_output=False)), cats),
            ("num", SimpleImputer(strategy="median", add_indicator=True), nums)])

    out = {}
    models = {
        "hist_gradient_boosting": make_pipeline(prep(), HistGradientBoostingClassifier(random_state=seed)),
        "mlp": make_pipeline(prep(), StandardScaler(), MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=2000,
                                                                     random_state=seed)),
    }
    for name, model in models.items():
        model.fit(df.iloc[train], y[train])
        out[name] = float((model.predict(df.iloc[test]) == y[test]).mean())
    return out


def worker_accuracy(schema: Schema, schema_file: str, rows: list[dict[str, Value]], labels: list[str],
                    train: np.ndarray, test: np.ndarray, rounds: int, seed: int) -> tuple[float, int, float]:
    """(test accuracy of the serving model, committed rounds, seconds) after the worker's rounds."""
    from moto import mock_aws

    from autotraining.aws import Aws
    from autotraining.predictor import Predictor
    from autotraining.records import Record
    from autotraining.registry import Registry
    from autotraining.segments import SegmentRef, encode_segment, segment_key
    from autotraining.serving import predict_rows
    from autotraining.settings import Settings
    from autotraining.validation import validate_rows
    from autotraining_tools.local.provision import provision
    from worker.loop import Worker, WorkerOptions

    order = np.random.default_rng(seed).permutation(train)
    started = time.perf_counter()
    with mock_aws():
        aws = Aws(provision(Aws(Settings(region="us-east-1"))).replace(schema_file=schema_file))
        worker = Worker(aws, WorkerOptions(once=True, poll_seconds=0, idle_grace=0.0, max_segments=1))
        first = 1
        for part in np.array_split(order, rounds):
            records = [Record(id=f"r{i}", features=tuple(rows[i][n] for n in schema.feature_names),
                              label=labels[i], created=1_767_225_600_000 + int(i)) for i in part]
            ref = SegmentRef(key=segment_key("shard-1", str(first), str(first + len(records) - 1)),
                             count=len(records))
            aws.s3.put_object(Bucket=aws.settings.bucket, Key=ref.key, Body=encode_segment(records, schema))
            aws.sqs.send_message(QueueUrl=aws.settings.queue_url, MessageBody=ref.to_message())
            first += len(records)
            worker.run()
        registry = Registry(aws.dynamodb, aws.settings.models_table)
        latest = registry.latest()
        assert latest is not None and latest.records_seen == len(train), latest
        predictor = Predictor.from_s3(aws.s3, aws.settings.bucket, latest.model_version)
        answer = predict_rows(validate_rows([rows[i] for i in test], schema), schema, predictor)
        committed = len(registry.history(limit=100))
    got = np.array([p["label"] for p in answer["predictions"]])
    return float((got == np.array(labels)[test]).mean()), committed, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="splits to average over")
    parser.add_argument("--rounds", type=int, default=3, help="log segments (worker rounds) per data set")
    parser.add_argument("--test-share", type=float, default=0.3)
    parser.add_argument("--only", choices=("penguins", "phishing"), default=None)
    args = parser.parse_args()
    from autotraining.logs import configure

    configure("console", level=40)  # the worker's per-round logs would drown the table
    sets = {"penguins": (penguins, str(SCHEMAS / "penguins.json")),
            "phishing": (phishing, str(SCHEMAS / "phishing.json"))}
    print(f"{'data set':10} {'rows':>5} {'test':>5}  {'worker':>7} {'HGB':>7} {'MLP':>7} {'gap':>6}  "
          f"{'rounds':>6} {'worker s':>8}")
    met = True
    for name, (load, schema_file) in sets.items():
        if args.only and name != args.only:
            continue
        schema, rows, labels = load()
        acc: dict[str, list[float]] = {"worker": [], "hist_gradient_boosting": [], "mlp": []}
        n_rounds, seconds = [], []
        for seed in range(args.seeds):
            train, test = split(labels, args.test_share, seed)
            for k, v in baselines(schema, rows, labels, train, test, seed).items():
                acc[k].append(v)
            a, r, s = worker_accuracy(schema, schema_file, rows, labels, train, test, args.rounds, seed)
            acc["worker"].append(a)
            n_rounds.append(r)
            seconds.append(s)
        mean = {k: float(np.mean(v)) for k, v in acc.items()}
        gap = 100 * (mean["worker"] - max(mean["hist_gradient_boosting"], mean["mlp"]))
        met = met and gap >= -1.0
        print(f"{name:10} {len(rows):5d} {len(test):5d}  {100 * mean['worker']:6.1f}% "
              f"{100 * mean['hist_gradient_boosting']:6.1f}% {100 * mean['mlp']:6.1f}% {gap:+5.1f}  "
              f"{np.mean(n_rounds):6.1f} {np.mean(seconds):8.1f}", flush=True)
        print(f"{'':10} per seed: worker {[round(100 * x, 1) for x in acc['worker']]}, "
              f"HGB {[round(100 * x, 1) for x in acc['hist_gradient_boosting']]}, "
              f"MLP {[round(100 * x, 1) for x in acc['mlp']]}")
    print(f"goal (worker within 1 point of the better baseline, mean over {args.seeds} splits): "
          f"{'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
