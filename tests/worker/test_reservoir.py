"""Reservoir (Algorithm R): uniform, fixed size, seeded, inputs untouched, save/load round trip."""
from __future__ import annotations

import doctest

import numpy as np

import worker.reservoir
from worker.reservoir import Reservoir


def rows(n: int, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.arange(start, start + n)
    return idx.reshape(-1, 1).astype(float), idx % 3, idx.astype(np.uint64)


def test_docstring_example_runs() -> None:
    result = doctest.testmod(worker.reservoir)
    assert result.attempted > 0 and result.failed == 0


def test_reservoir_keeps_first_items_until_full_then_stays_at_capacity() -> None:
    r = Reservoir(capacity=5, n_features=1, seed=0)
    r.add(*rows(3))
    assert len(r) == 3 and list(r.ids) == [0, 1, 2]
    r.add(*rows(100, start=3))
    assert len(r) == 5 and r.seen == 103
    assert len(set(r.ids.tolist())) == 5


def test_every_item_is_sampled_with_probability_capacity_over_n() -> None:
    n, k, trials = 50, 5, 2000
    hits = np.zeros(n)
    for seed in range(trials):
        r = Reservoir(capacity=k, n_features=1, seed=seed)
        x, y, ids = rows(n)
        # Offer in uneven chunks: the sample must not depend on how the stream is batched.
        for a, b in ((0, 7), (7, 8), (8, 31), (31, 50)):
            r.add(x[a:b], y[a:b], ids[a:b])
        hits[r.ids.astype(int)] += 1
    freq = hits / trials
    assert abs(freq.mean() - k / n) < 1e-9
    # Binomial(2000, 0.1): sd ≈ 0.0067; 5 sd on the extremes.
    assert freq.min() > k / n - 0.034 and freq.max() < k / n + 0.034


def test_add_never_mutates_its_inputs() -> None:
    x, y, ids = rows(40)
    before = (x.copy(), y.copy(), ids.copy())
    r = Reservoir(capacity=4, n_features=1, seed=3)
    r.add(x, y, ids)
    got = r.x
    got[:] = -1  # the properties hand out copies
    assert all(np.array_equal(a, b) for a, b in zip((x, y, ids), before, strict=True))
    assert (r.x >= 0).all()


def test_same_seed_gives_same_sample_and_different_seed_differs() -> None:
    def sample(seed: int) -> list[int]:
        r = Reservoir(capacity=10, n_features=1, seed=seed)
        r.add(*rows(1000))
        return r.ids.tolist()

    assert sample(11) == sample(11)
    assert sample(11) != sample(12)


def test_save_load_round_trip_continues_the_same_stream() -> None:
    a = Reservoir(capacity=8, n_features=1, seed=5)
    a.add(*rows(100))
    b = Reservoir.from_bytes(a.to_bytes())
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and np.array_equal(a.ids, b.ids)
    assert (b.seen, b.capacity, b.seed) == (a.seen, a.capacity, a.seed)
    a.add(*rows(500, start=100))
    b.add(*rows(500, start=100))
    assert a.ids.tolist() == b.ids.tolist()


def test_window_keeps_the_most_recent_rows_and_long_term_memory_the_rest_uniformly() -> None:
    n, trials = 60, 1500
    hits = np.zeros(n)
    for seed in range(trials):
        r = Reservoir(capacity=10, n_features=1, seed=seed, recent_share=0.5)
        x, y, ids = rows(n)
        r.add(x[:25], np.zeros(25, dtype=np.int64), ids[:25])
        r.add(x[25:], np.zeros(35, dtype=np.int64), ids[25:])
        hits[r.ids.astype(int)] += 1
    freq = hits / trials
    assert (freq[-5:] == 1.0).all()  # the window: the last five rows, always
    # The 55 older rows: 5 long-term slots, probability 5/55 each (binomial sd ≈ 0.0074).
    assert np.allclose(freq[:-5], 5 / 55, atol=0.035) and abs(freq[:-5].mean() - 5 / 55) < 1e-9


def test_rare_label_keeps_its_long_term_slots() -> None:
    r = Reservoir(capacity=300, n_features=1, seed=0, recent_share=0.0, n_labels=3)
    idx = np.arange(30000)
    y = np.where(idx % 100 == 0, 2, idx % 2)  # label 2 is 1 % of the stream
    r.add(idx.reshape(-1, 1).astype(float), y, idx.astype(np.uint64))
    counts = np.bincount(r.y, minlength=3)
    assert counts.tolist() == [100, 100, 100]  # uniform Algorithm R would keep about 3 of label 2


def test_cut_forgets_rows_before_the_change_and_sampling_restarts_after_it() -> None:
    r = Reservoir(capacity=20, n_features=1, seed=1, recent_share=0.5, n_labels=2)
    idx = np.arange(1000)
    r.add(idx.reshape(-1, 1).astype(float), idx % 2, idx.astype(np.uint64))
    r.cut(995)
    assert sorted(r.t.tolist()) == [995, 996, 997, 998, 999]
    more = np.arange(1000, 1100)
    r.add(more.reshape(-1, 1).astype(float), more % 2, more.astype(np.uint64))
    assert (r.t >= 995).all() and len(r) == 20
    b = Reservoir.from_bytes(r.to_bytes())
    assert b.t.tolist() == r.t.tolist() and b.recent == r.recent and b.n_labels == 2


def test_state_written_before_the_window_existed_still_loads() -> None:
    import io
    import json

    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    meta = {"capacity": 3, "n_features": 1, "seed": 0, "seen": 10, "rng": rng.bit_generator.state}
    np.savez(buf, x=np.arange(3.0).reshape(3, 1), y=np.zeros(3, dtype=np.int64), ids=np.arange(3, dtype=np.uint64),
             meta=np.array(json.dumps(meta)))
    r = Reservoir.from_bytes(buf.getvalue())
    assert len(r) == 3 and r.seen == 10 and r.ids.tolist() == [0, 1, 2]


def test_reconfigured_reservoir_keeps_the_newest_rows_in_its_window_and_the_rest_per_label() -> None:
    old = Reservoir(capacity=12, n_features=1, seed=2)  # uniform, one stratum: a state from before the window
    idx = np.arange(300)
    old.add(idx.reshape(-1, 1).astype(float), idx % 3, idx.astype(np.uint64))
    new = old.reconfigured(recent_share=0.5, n_labels=3)
    assert (new.recent, new.slots, new.seen) == (6, 2, 300) and 6 < len(new) <= 12  # ≤ 2 older rows per label
    assert sorted(new.t.tolist())[-6:] == sorted(old.t.tolist())[-6:]  # the newest six are the window
    more = np.arange(300, 320)
    new.add(more.reshape(-1, 1).astype(float), more % 3, more.astype(np.uint64))
    assert sorted(new.t.tolist())[-6:] == list(range(314, 320)) and len(new) == 12
    assert set(old.ids.tolist()) <= set(range(300))  # the original is untouched
