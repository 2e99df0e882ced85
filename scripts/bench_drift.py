"""Benchmark: how fast the served model follows a change, on streams no one here wrote (River's generators).

Each stream is ``--pre`` rounds of 5,000 records of one regime, then ``--rounds`` rounds of the
new regime (River ``datasets.synth``: Agrawal's loan functions, with ``ConceptDriftStream`` for
the gradual change). Every round goes through the REAL worker round (``worker.loop.Worker`` on
in-process moto: segments + queue messages in, a committed ``ModelVersion`` out), and after each
round the *served* model (``model.h5`` of the latest published version) is scored on 2,000 fresh
rows of the current regime (another seed). In the same run, on the same records:

- River ``HoeffdingAdaptiveTreeClassifier`` and ``ARFClassifier``, trained progressively
  (``learn_one`` on every record, in order), scored on the same fresh rows;
- *refit on all history*: a fresh MLP (the worker's ``TrainConfig``) trained on every record so
  far — the periodic full retrain;
- *post-change only*: a fresh MLP trained on the post-change records alone (an oracle that knows
  where the change is) — the target;
- for ``--today`` streams: the worker with the method before this change (uniform replay,
  ``replay_recent_share=0``; no detector, ``drift_delta=0``; unweighted gate, ``gate_recent_weight=0``).

Printed first, the fair comparison: accuracy on fresh post-change rows after 1 and after 4
post-change rounds, per method; then rounds until recovery (first post-change round whose served
model is within 1 point of the post-change-only model after the last round), false alarms (drift
reported before the change, or ever on the stationary stream), detection round and round time.

Goals (issue 9): after 1 post-change round ≥ the better of River's two; after 4 within 1 point of
post-change-only; stationary within 0.5 point of today's method and no false alarm.

    .venv/bin/python scripts/bench_drift.py                 # all streams (about 3 min a stream)
    .venv/bin/python scripts/bench_drift.py --quick         # abrupt + stationary, 2 + 2 rounds, no ARF
    .venv/bin/python scripts/bench_drift.py --streams abrupt,label --rounds 4 --json out.json
    .venv/bin/python scripts/bench_drift.py --table-from a.json,b.json   # one table from separate runs
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROUND = 5000
FRESH = 2000
FEATURES = ("salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan")
Row = tuple[dict[str, float], int]


def agrawal(function: int, seed: int, keep: Callable[[dict[str, float], int], bool] | None = None) -> Iterator[Row]:
    from river.datasets import synth

    for x, y in synth.Agrawal(classification_function=function, seed=seed):
        if keep is None or keep(x, int(y)):
            yield x, int(y)


def gradual(a: int, b: int, seed: int, position: int, width: int) -> Iterator[Row]:
    from river.datasets import synth

    stream = synth.ConceptDriftStream(stream=synth.Agrawal(classification_function=a, seed=seed),
                                      drift_stream=synth.Agrawal(classification_function=b, seed=seed + 1),
                                      position=position, width=width, seed=seed)
    for x, y in stream:
        yield x, int(y)


def thin(label: int, p: float, seed: int) -> Callable[[dict[str, float], int], bool]:
    rng = np.random.default_rng(seed)
    return lambda x, y: y != label or bool(rng.random() < p)


@dataclass(frozen=True)
class Stream:
    name: str
    what: str
    pre: Callable[[int], Iterator[Row]]  # seed → rows of the old regime
    post: Callable[[int], Iterator[Row]]  # seed → rows of the new regime
    whole: Callable[[int, int], Iterator[Row]] | None = None  # (seed, change position) → the whole stream
    stationary: bool = False
    early: int = 0  # records before the measured change where change already begins (gradual; recurring's first)


def streams() -> dict[str, Stream]:
    low = lambda x, y: x["salary"] < 75000  # noqa: E731
    high = lambda x, y: x["salary"] >= 75000  # noqa: E731
    return {s.name: s for s in [
        Stream("abrupt", "Agrawal function 0 → 2 at once",
               lambda s: agrawal(0, s), lambda s: agrawal(2, s + 1000)),
        Stream("gradual", "Agrawal 0 → 2 over 5,000 records (ConceptDriftStream, sigmoid)",
               lambda s: agrawal(0, s), lambda s: agrawal(2, s + 1000),
               whole=lambda s, pos: gradual(0, 2, s, pos, 5000), early=2500),
        Stream("recurring", "Agrawal 2, then 0 (2 rounds), then back to 2",
               lambda s: agrawal(2, s), lambda s: agrawal(2, s + 1000), early=2 * ROUND),
        Stream("label", "Agrawal 2; class 1 thinned to 20 % (label shift)",
               lambda s: agrawal(2, s), lambda s: agrawal(2, s + 1000, keep=thin(1, 0.2, s))),
        Stream("covariate", "Agrawal 2; salary < 75k, then ≥ 75k (covariate shift)",
               lambda s: agrawal(2, s, keep=low), lambda s: agrawal(2, s + 1000, keep=high)),
        Stream("stationary", "Agrawal 2 throughout",
               lambda s: agrawal(2, s), lambda s: agrawal(2, s + 1000), stationary=True),
    ]}


def records_for(stream: Stream, pre: int, post: int, seed: int) -> list[Row]:
    n_pre = pre * ROUND
    if stream.whole is not None:
        return list(itertools.islice(stream.whole(seed, n_pre), n_pre + post * ROUND))
    if stream.name == "recurring":
        # Concept 2 for all but the last two pre rounds, concept 0 for those two, then 2 again.
        first = list(itertools.islice(agrawal(2, seed), max(0, pre - 2) * ROUND))
        middle = list(itertools.islice(agrawal(0, seed + 7), min(pre, 2) * ROUND))
        return first + middle + list(itertools.islice(stream.post(seed), post * ROUND))
    head = list(itertools.islice(stream.pre(seed), n_pre))
    return head + list(itertools.islice(stream.post(seed), post * ROUND))


def as_arrays(rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([[float(x[f]) for f in FEATURES] for x, _ in rows], dtype=np.float64),
            np.array([y for _, y in rows], dtype=np.int64))


# --------------------------------------------------------------------------- the worker
def schema_file(tmp: str) -> str:
    doc = {"name": "agrawal", "description": "River's Agrawal loan generator",
           "features": [{"name": f} for f in FEATURES], "labels": ["0", "1"]}
    path = os.path.join(tmp, "agrawal.json")
    Path(path).write_text(json.dumps(doc), encoding="utf-8")
    return path


def run_worker(rows: list[Row], pre: int, fresh: list[tuple[np.ndarray, np.ndarray]],
               overrides: dict[str, Any], epochs: int) -> dict[str, Any]:
    """Feed ``rows`` round by round through the real worker; the served model's accuracy after each round."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from autotraining.aws import Aws
    from autotraining.records import Record
    from autotraining.registry import Registry
    from autotraining.schema import load_schema
    from autotraining.segments import SegmentRef, encode_segment, segment_key
    from autotraining.settings import Settings
    from autotraining_tools.local.provision import provision
    from worker import trainer
    from worker.loop import Worker, WorkerOptions

    out: dict[str, Any] = {"accuracy": [], "drift": [], "status": [], "round_s": [], "effort": [], "rescaled": []}
    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        path = schema_file(tmp)
        schema = load_schema(path)
        aws = Aws(provision(Aws(Settings(region="us-east-1"))).replace(schema_file=path, **overrides))
        registry = Registry(aws.dynamodb, aws.settings.models_table)
        w = Worker(aws, WorkerOptions(once=True, poll_seconds=0, config=trainer.TrainConfig(epochs=epochs)))
        n_rounds = len(rows) // ROUND
        for r in range(n_rounds):
            chunk = rows[r * ROUND:(r + 1) * ROUND]
            recs = [Record(id=f"r{r}-{i}", features=tuple(float(x[f]) for f in FEATURES), label=str(y),
                           created=1_700_000_000_000 + r * ROUND + i) for i, (x, y) in enumerate(chunk)]
            first = 1 + r * ROUND
            ref = SegmentRef(key=segment_key("shard-bench", f"{first:012d}", f"{first + ROUND - 1:012d}"),
                             count=ROUND)
            aws.s3.put_object(Bucket=aws.settings.bucket, Key=ref.key, Body=encode_segment(recs, schema))
            aws.sqs.send_message(QueueUrl=aws.settings.queue_url, MessageBody=ref.to_message())
            w.run()
            latest = registry.latest()
            assert latest is not None
            v = registry.get(latest.round_version)
            assert v is not None
            body = aws.s3.get_object(Bucket=aws.settings.bucket,
                                     Key=f"models/{latest.model_version}/model.h5")["Body"].read()
            tx, ty = fresh[0] if r < pre else fresh[1]
            out["accuracy"].append(trainer.score(trainer.from_h5_bytes(body), tx, ty, schema.labels).accuracy)
            out["drift"].append(bool(v.metrics.get("drift", {}).get("detected", False)))
            out["status"].append(v.status)
            out["round_s"].append(v.duration_s)
            e = v.metrics.get("effort", {})
            out["effort"].append(f"{e.get('reason', '')}: {e.get('chosen', '')} {e.get('epochs', '')}")
            out.setdefault("detail", []).append({k: v.metrics.get(k) for k in ("drift", "train_rows", "holdout_rows",
                                                                                "replay", "holdout", "parent_holdout")})
            out["rescaled"].append(bool(v.metrics.get("scaling", {}).get("restandardized", False)))
    return out


# --------------------------------------------------------------------------- baselines
def run_river(rows: list[Row], pre: int, fresh_rows: list[list[Row]], arf: bool) -> dict[str, list[float]]:
    from river import forest, tree

    models: dict[str, Any] = {"hat": tree.HoeffdingAdaptiveTreeClassifier(seed=1)}
    if arf:
        models["arf"] = forest.ARFClassifier(seed=1)
    out: dict[str, list[float]] = {k: [] for k in models}
    for r in range(len(rows) // ROUND):
        for x, y in rows[r * ROUND:(r + 1) * ROUND]:
            for m in models.values():
                m.learn_one(x, y)
        test = fresh_rows[0] if r < pre else fresh_rows[1]
        for k, m in models.items():
            out[k].append(float(np.mean([m.predict_one(x) == y for x, y in test])))
    return out


def mlp_accuracy(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray, epochs: int) -> float:
    from worker import trainer

    keep = ~trainer.is_holdout(np.arange(len(y), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    model = trainer.train(None, x[keep], y[keep], 2, trainer.TrainConfig(epochs=epochs))
    return float(trainer.score(model, tx, ty, ("0", "1")).accuracy or 0.0)


# --------------------------------------------------------------------------- one stream
def bench_stream(stream: Stream, pre: int, post: int, seed: int, arf: bool, today: bool, epochs: int) -> dict[str, Any]:
    rows = records_for(stream, pre, post, seed)
    fresh_pre = list(itertools.islice(stream.pre(seed + 555) if stream.name != "recurring" else agrawal(0, seed + 556),
                                      FRESH))
    fresh_post = list(itertools.islice(stream.post(seed + 777), FRESH))
    fresh = [as_arrays(fresh_pre), as_arrays(fresh_post)]
    x, y = as_arrays(rows)
    t = time.perf_counter()
    ours = run_worker(rows, pre, fresh, {}, epochs)
    ours_s = time.perf_counter() - t
    res: dict[str, Any] = {"stream": stream.name, "what": stream.what, "pre": pre, "post": post, "ours": ours,
                           "early": stream.early,
                           "ours_wall_s": round(ours_s, 1)}
    if today:
        res["today"] = run_worker(rows, pre, fresh,
                                  {"replay_recent_share": 0.0, "drift_delta": 0.0, "gate_recent_weight": 0.0}, epochs)
    res["river"] = run_river(rows, pre, [fresh_pre, fresh_post], arf)
    tx, ty = fresh[1]
    marks = sorted({1, post})
    res["refit_all"] = {k: mlp_accuracy(x[:(pre + k) * ROUND], y[:(pre + k) * ROUND], tx, ty, epochs) for k in marks}
    res["post_only"] = {k: mlp_accuracy(x[pre * ROUND:(pre + k) * ROUND], y[pre * ROUND:(pre + k) * ROUND], tx, ty,
                                        epochs) for k in marks}
    return res


def summary(res: dict[str, Any]) -> dict[str, Any]:
    pre, post = res["pre"], res["post"]
    ours = res["ours"]["accuracy"]
    at = lambda seq, k: seq[pre + k - 1] if len(seq) >= pre + k else None  # noqa: E731
    target = res["post_only"][post]
    recovery = next((k for k in range(1, post + 1) if ours[pre + k - 1] >= target - 0.01), None)
    drift = res["ours"]["drift"]
    # A detection is false when every record of its round precedes the change (its first sign, for a gradual one).
    early = streams()[res["stream"]].early if res["stream"] in streams() else res.get("early", 0)
    quiet = (pre * ROUND - early) // ROUND
    false_alarms = sum(drift) if res["stream"] == "stationary" else sum(drift[:quiet])
    detected = next((k for k in range(1, post + 1) if drift[pre + k - 1]), None)
    out = {"stream": res["stream"], "ours_1": at(ours, 1), "ours_4": at(ours, post),
           "hat_1": at(res["river"]["hat"], 1), "hat_4": at(res["river"]["hat"], post),
           "arf_1": at(res["river"].get("arf", []), 1), "arf_4": at(res["river"].get("arf", []), post),
           "refit_1": res["refit_all"][1], "refit_4": res["refit_all"][post],
           "post_only_1": res["post_only"][1], "post_only_4": target,
           "recovery_rounds": recovery, "false_alarms": false_alarms, "detected_round": detected,
           "round_s_median": float(np.median(res["ours"]["round_s"])), "round_s_max": max(res["ours"]["round_s"])}
    if "today" in res:
        out["today_1"], out["today_4"] = at(res["today"]["accuracy"], 1), at(res["today"]["accuracy"], post)
        out["today_round_s_median"] = float(np.median(res["today"]["round_s"]))
    return out


def fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def print_table(rows: list[dict[str, Any]], post: int) -> None:
    print(f"\nAccuracy of the served model on 2,000 fresh post-change rows, after 1 and {post} post-change rounds "
          f"of {ROUND:,} records (same records for every method):\n")
    head = ["stream", "ours 1", "HAT 1", "ARF 1", "refit 1", "post-only 1", f"ours {post}", f"HAT {post}",
            f"ARF {post}", f"refit {post}", f"post-only {post}", "today 1", f"today {post}"]
    keys = ["stream", "ours_1", "hat_1", "arf_1", "refit_1", "post_only_1", "ours_4", "hat_4", "arf_4", "refit_4",
            "post_only_4", "today_1", "today_4"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(fmt(r.get(k)) for k in keys) + " |")
    print("\nGoals and the rest:\n")
    print("| stream | 1 round ≥ best River | last round within 1 pt of post-only | detected in round | recovery rounds "
          "| false alarms | round s (median / max) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        river = max(v for v in (r["hat_1"], r["arf_1"]) if v is not None)
        g1 = "yes" if r["ours_1"] >= river else f"no ({r['ours_1'] - river:+.3f})"
        g4 = "yes" if r["ours_4"] >= r["post_only_4"] - 0.01 else f"no ({r['ours_4'] - r['post_only_4']:+.3f})"
        if r["stream"] == "stationary":  # no change: the goals are the two below the table
            g1, g4 = f"n/a ({r['ours_1'] - river:+.3f})", f"n/a ({r['ours_4'] - r['post_only_4']:+.3f})"
        print(f"| {r['stream']} | {g1} | {g4} | {fmt(r['detected_round'])} | {fmt(r['recovery_rounds'])} "
              f"| {r['false_alarms']} | {r['round_s_median']:.1f} / {r['round_s_max']:.1f} |")
    for r in rows:
        if r["stream"] == "stationary" and r.get("today_4") is not None:
            d = r["ours_4"] - r["today_4"]
            print(f"\nstationary: ours {r['ours_4']:.4f} vs today {r['today_4']:.4f} ({d * 100:+.2f} points; "
                  f"goal ≥ −0.5), false alarms {r['false_alarms']} (goal 0); median round "
                  f"{r['round_s_median']:.1f} s vs today {r['today_round_s_median']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--streams", default=",".join(streams()), help="comma-separated: " + ", ".join(streams()))
    p.add_argument("--pre", type=int, default=4, help="rounds of the old regime")
    p.add_argument("--rounds", type=int, default=4, help="post-change rounds")
    p.add_argument("--today", default="abrupt,stationary", help="streams also run with the method before (or 'none')")
    p.add_argument("--no-arf", action="store_true", help="skip River's ARF (the slowest baseline)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="abrupt + stationary, 2 + 2 rounds, no ARF")
    p.add_argument("--json", default="", help="write the raw results here")
    p.add_argument("--table-from", default="", help="print the table of earlier --json files (comma-separated)")
    args = p.parse_args(argv)
    if args.table_from:
        done = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.table_from.split(",")]
        for res in (res for d in done for res in d["results"]):
            for k in ("refit_all", "post_only"):  # JSON made the round numbers strings
                res[k] = {int(n): v for n, v in res[k].items()}
        print_table([summary(res) for d in done for res in d["results"]], done[0]["results"][0]["post"])
        return 0
    names = args.streams.split(",")
    if args.quick:
        names, args.pre, args.rounds, args.no_arf = ["abrupt", "stationary"], 2, 2, True
    import worker  # noqa: F401  (legacy Keras before TensorFlow loads)

    all_streams = streams()
    # One throw-away round first: TensorFlow's and tensorflowjs' first-use costs (~10 s) would
    # otherwise land on whichever method runs first.
    warm = list(itertools.islice(agrawal(2, 12345), ROUND))
    run_worker(warm, 1, [as_arrays(warm[:100])] * 2, {}, 1)
    results, rows = [], []
    for name in names:
        t = time.perf_counter()
        res = bench_stream(all_streams[name], args.pre, args.rounds, args.seed, not args.no_arf,
                           name in args.today.split(","), args.epochs)
        results.append(res)
        rows.append(summary(res))
        print(f"{name}: ours {[round(a, 3) for a in res['ours']['accuracy']]} drift {res['ours']['drift']} "
              f"effort {res['ours']['effort']} rescaled {res['ours']['rescaled']} ({time.perf_counter() - t:.0f} s)",
              flush=True)
    print_table(rows, args.rounds)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "summary": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
