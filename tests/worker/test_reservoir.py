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
