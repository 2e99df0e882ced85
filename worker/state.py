"""What the worker carries from round to round, versioned with the model: ``TrainingState``.

One ``.npz`` object per committed round (``state/<version>-<attempt>.npz``, named by the
round's ``ModelVersion.state_key``): the reservoir (``worker.reservoir``), the running counts
(records seen, per label), what follows change (``worker.drift``: the drift monitor's detectors,
the stream position of the last detected change and the running feature moments, in the ``meta``
JSON) and the dedupe bookkeeping, ``consumed``: per stream shard, the
sorted, disjoint, closed intervals of stream sequence numbers whose records have been counted.
A round reads the state of the latest committed round and writes a new object; nothing is ever
updated in place, so a round that crashes or loses the commit race leaves the committed state
untouched.

Why intervals are enough (where a duplicate record can come from, and what catches it):

- *Lambda retries a stream batch*: the same records, the same segment key and bytes. The
  segment is skipped by its consumed mark (``Registry.consumed``) or, if the marks have expired,
  because its whole range lies inside ``consumed``.
- *Bisect-on-error*: a failed batch whose segment was already written is split and retried in
  halves; the halves are new keys whose ranges overlap the earlier segment. Every record carries
  its sequence number (``Record.seq``), and a record whose sequence number is inside a consumed
  interval of its shard is skipped — whichever of the overlapping segments came first.
- *A re-sent id*: the records table keeps the id, so the second write is a stream ``MODIFY``,
  never logged (``autotraining.recordlog``); within one round records are also deduped by id.
- *SQS redelivery* and *two workers*: the same segment key again; the commit is one conditional
  write on ``latest`` (a second round over the same segment loses it or, committed later, finds
  the segment's range inside ``consumed``), and the consumed marks written after the commit let a
  redelivered message be deleted without reading its segment.

Intervals merge as they close: a segment's range is added when its round commits, and the gap
between two intervals of a shard is closed (filled) once the S3 log holds no segment starting
inside it (``worker.drain.segment_starts``). A stream shard is delivered in order, so when a
segment exists every earlier record of the shard is already logged; a gap with no segment in it
holds no record, and filling it changes no count. So the bookkeeping holds one interval per shard
plus one per gap still open (a segment not yet consumed): it grows with shards and in-flight
segments, never with records. ``records_seen`` is an exact counter.

Superseded state objects do not pile up, and the worker deletes none of them (it may not delete
committed objects): after each commit ``expire_states`` tags the state of rounds older than the
last ``KEEP_STATES`` and the other attempts at the committed version (a crashed or losing
attempt's leftovers) ``lifecycle=superseded``, and the bucket's lifecycle rule expires tagged
state objects a day later (versioning keeps them recoverable for 30 more days); another rule
expires ``staging/`` leftovers. Storage for state is O(rounds per day × state size), not
rounds × history.

State written by the earlier design (a ``seen`` array of id hashes) still loads: its size
becomes ``records_seen`` and its segments stay covered by their consumed marks.
"""
from __future__ import annotations

import bisect
import dataclasses
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotraining.logs import get_logger
from worker.reservoir import Reservoir

log = get_logger("worker.state")

STATE_PREFIX = "state/"
KEEP_STATES = 3  # committed rounds whose state stays readable (the latest is the one rounds read)
# The tag the template's lifecycle rule expires state objects by (and the only tag the worker may set).
SUPERSEDED_TAG = {"Key": "lifecycle", "Value": "superseded"}

Interval = tuple[int, int]  # closed range of stream sequence numbers [lo, hi]


def state_key(version: str, attempt: str) -> str:
    return f"{STATE_PREFIX}{version}-{attempt}.npz"


def add_interval(intervals: list[Interval], lo: int, hi: int) -> list[Interval]:
    """A new sorted, disjoint list with ``[lo, hi]`` added (overlapping or touching intervals merge).

    >>> add_interval([(1, 5), (10, 20)], 4, 12)
    [(1, 20)]
    >>> add_interval([(1, 5)], 6, 8)
    [(1, 8)]
    """
    out: list[Interval] = []
    for a, b in intervals:
        if b + 1 < lo or hi + 1 < a:
            out.append((a, b))
        else:
            lo, hi = min(lo, a), max(hi, b)
    out.append((lo, hi))
    out.sort()
    return out


def close_gaps(intervals: list[Interval], starts: Iterable[int], complete_below: int | None) -> list[Interval]:
    """Merge neighbours whose gap holds no segment start; ``starts`` must list every segment that
    starts above the first interval and below ``complete_below`` (None: no bound).

    >>> close_gaps([(1, 5), (10, 20), (30, 40)], [10, 25, 30], None)
    [(1, 20), (30, 40)]
    """
    firsts = sorted(set(starts))
    out: list[Interval] = []
    for a, b in intervals:
        if out:
            prev_hi = out[-1][1]
            known = complete_below is None or a <= complete_below
            i = bisect.bisect_right(firsts, prev_hi)
            if known and (i == len(firsts) or firsts[i] >= a):
                out[-1] = (out[-1][0], b)
                continue
        out.append((a, b))
    return out


@dataclass
class TrainingState:
    """Reservoir + counts + consumed sequence intervals per shard (see the module docstring)."""

    reservoir: Reservoir
    consumed: dict[str, list[Interval]] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)  # ``DriftMonitor.to_dict()``; {} before the first round
    change_at: int = -1  # stream position of the last detected change (-1: none)
    moments: dict[str, Any] = field(default_factory=dict)  # ``worker.round.Moments`` as a dict; {} before
    seen_count: int = 0

    @classmethod
    def empty(cls, n_features: int, capacity: int, seed: int = 0, recent_share: float = 0.0,
              n_labels: int = 1) -> TrainingState:
        return cls(reservoir=Reservoir(capacity=capacity, n_features=n_features, seed=seed,
                                       recent_share=recent_share, n_labels=n_labels))

    @property
    def records_seen(self) -> int:
        return self.seen_count

    @property
    def interval_count(self) -> int:
        return sum(len(v) for v in self.consumed.values())

    def covers(self, shard: str, lo: int, hi: int) -> bool:
        """Whether ``[lo, hi]`` of ``shard`` lies inside one consumed interval."""
        intervals = self.consumed.get(shard, [])
        i = bisect.bisect_right(intervals, (lo, float("inf"))) - 1
        return i >= 0 and intervals[i][0] <= lo and hi <= intervals[i][1]

    def unseen(self, origins: Iterable[tuple[str, int, int]]) -> np.ndarray:
        """Mask of the records not counted by any committed round.

        Each record is given as ``(shard, lo, hi)``: its sequence number twice, or for a line of an
        old segment without one, its segment's range (the record is counted only if all of it is).
        """
        return np.array([not self.covers(s, lo, hi) if s else True for s, lo, hi in origins], dtype=bool)

    def advanced(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray, labels: tuple[str, ...],
                 ranges: Iterable[tuple[str, int, int]] = ()) -> TrainingState:
        """A new state with these (already deduped, unseen) rows added and these segment ranges
        ``(shard, first, last)`` marked consumed; ``self`` is unchanged."""
        reservoir = Reservoir.from_bytes(self.reservoir.to_bytes())
        reservoir.add(x, y, ids)
        consumed = {k: list(v) for k, v in self.consumed.items()}
        for shard, lo, hi in ranges:
            if shard:
                consumed[shard] = add_interval(consumed.get(shard, []), lo, hi)
        counts = dict(self.label_counts)
        for i, lab in enumerate(labels):
            counts[lab] = counts.get(lab, 0) + int((np.asarray(y) == i).sum())
        # ``replace`` keeps whatever else the state carries (fields other parts of the worker add).
        return dataclasses.replace(self, reservoir=reservoir, consumed=consumed, label_counts=counts,
                                   seen_count=self.seen_count + int(np.asarray(y).shape[0]))

    def gaps(self) -> dict[str, tuple[int, int]]:
        """Per shard with open gaps: (end of its first interval, start of its last) — where to look."""
        return {s: (v[0][1], v[-1][0]) for s, v in self.consumed.items() if len(v) > 1}

    def with_gaps_closed(self, listed: Mapping[str, tuple[list[int], int | None]]) -> TrainingState:
        """Close the gaps that ``listed`` (per shard: segment starts, complete below) shows empty."""
        consumed = {s: (close_gaps(v, *listed[s]) if s in listed else list(v)) for s, v in self.consumed.items()}
        return dataclasses.replace(self, consumed=consumed)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta: dict[str, Any] = {
            "label_counts": self.label_counts, "records_seen": self.seen_count,
            # Decimal strings: stream sequence numbers have up to 40 digits (beyond 64 bits).
            "consumed": {s: [[str(a), str(b)] for a, b in v] for s, v in sorted(self.consumed.items())},
            "drift": self.drift, "change_at": self.change_at, "moments": self.moments,
        }
        np.savez(buf, reservoir=np.frombuffer(self.reservoir.to_bytes(), dtype=np.uint8), meta=np.array(json.dumps(meta)))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainingState:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            reservoir = Reservoir.from_bytes(z["reservoir"].tobytes())
            meta = json.loads(str(z["meta"]))
            legacy_seen = int(z["seen"].shape[0]) if "seen" in z.files else 0
        consumed = {s: [(int(a), int(b)) for a, b in v] for s, v in meta.get("consumed", {}).items()}
        return cls(reservoir=reservoir, consumed=consumed,
                   label_counts={k: int(v) for k, v in meta["label_counts"].items()},
                   seen_count=int(meta.get("records_seen", legacy_seen)),
                   drift=meta.get("drift", {}), change_at=int(meta.get("change_at", -1)),
                   moments=meta.get("moments", {}))


def mark_superseded(s3: Any, bucket: str, keys: Iterable[str]) -> list[str]:
    """Tag state objects for the lifecycle rule to expire; returns the keys tagged.

    Never fails the round that calls it: an object left untagged is tagged by a later commit
    (``expire_states`` looks back ``KEEP_STATES`` versions beyond the kept ones).
    """
    tagged = []
    for key in keys:
        try:
            s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [SUPERSEDED_TAG]})
            tagged.append(key)
        except Exception as exc:  # noqa: BLE001 - clean-up is best effort; a later commit retries
            log.warning("state.mark_failed", key=key, error=str(exc))
    return tagged


def expire_states(s3: Any, bucket: str, committed_key: str, keep: int = KEEP_STATES) -> list[str]:
    """Mark superseded state objects for expiry (see the module docstring); returns the keys marked.

    Looks at the versions from ``2 * keep - 1`` back up to the committed one: each superseded state
    is marked at the ``keep`` commits after it leaves the kept window, so one failed call does not
    leave it forever, and the listing stays as short as the window.
    """
    name = committed_key[len(STATE_PREFIX):].rsplit(".", 1)[0]
    version = name.split("-", 1)[0]
    width = len(version)
    oldest_kept = f"{int(version) - keep + 1:0{width}d}"
    window_start = f"{STATE_PREFIX}{max(int(version) - 2 * keep + 1, 0):0{width}d}"
    doomed: list[str] = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=STATE_PREFIX,
                                                              StartAfter=window_start)
        for page in pages:
            for obj in page.get("Contents", []):
                v = obj["Key"][len(STATE_PREFIX):].split("-", 1)[0]
                if v < oldest_kept or (v == version and obj["Key"] != committed_key):
                    doomed.append(obj["Key"])
    except Exception as exc:  # noqa: BLE001 - clean-up is best effort; the next commit retries
        log.warning("state.expire_failed", error=str(exc))
        return []
    marked = mark_superseded(s3, bucket, doomed)
    if marked:
        log.info("state.superseded", marked=len(marked), kept_from=oldest_kept)
    return marked
