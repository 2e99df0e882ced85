"""A round's state and warm-start model made to fit the worker's schema after a schema change.

Every committed round records the encoding its state was written with (``metrics["encoding"]``,
``autotraining.encoding``). When the worker's schema encodes differently:

- every old column still exists (a compatible change, ``autotraining.schema_change``): the
  replay sample is migrated column by column (``Encoding.migrate``) and the model's first layer
  widened — a new input column gets a zero row in the first hidden kernel and a neutral
  standardization, so the widened model answers exactly like the old one until it learns — and
  the lineage continues;
- otherwise (a removed or retyped feature, a changed label set: only reachable with
  ``--new-lineage``), the round starts a fresh lineage: an empty state and no warm start. The
  version numbers go on and the old versions stay readable.
"""
from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from autotraining.encoding import Encoding
from autotraining.logs import get_logger
from autotraining.registry import Latest, Registry
from worker import trainer
from worker.reservoir import Reservoir
from worker.state import TrainingState

log = get_logger("worker.lineage")


def recorded_encoding(registry: Registry, version: str, width: int, current: Encoding) -> Encoding | None:
    """The encoding round ``version`` was trained with. A round from before encodings recorded none:
    it was plain numbers, taken as ``current`` when the widths agree; None (unknown) otherwise."""
    round_ = registry.get(version) if version else None
    raw = round_.metrics.get("encoding") if round_ is not None else None
    try:
        if isinstance(raw, dict):
            return Encoding.from_dict(raw)
    except ValueError:
        pass
    return current if width == current.width else None


def continues(old: Encoding | None, new: Encoding) -> bool:
    return old is not None and set(old.columns) <= set(new.columns)


def adapt(registry: Registry, latest: Latest | None, state: TrainingState, model: Any | None, enc: Encoding,
          n_labels: int, empty: Callable[[], TrainingState]) -> tuple[TrainingState, Any | None]:
    """(state, model) in encoding ``enc``: unchanged, migrated, or a fresh lineage (see module docstring);
    ``empty`` makes the fresh lineage's state (called only then)."""
    if latest is None:
        return state, model
    state_enc = recorded_encoding(registry, latest.round_version, state.reservoir.n_features, enc)
    model_enc = recorded_encoding(registry, latest.model_version,
                                  int(model.input_shape[-1]) if model is not None else enc.width, enc)
    labels_ok = model is None or int(model.output_shape[-1]) == n_labels
    if not labels_ok or not continues(state_enc, enc) or not continues(model_enc, enc):
        log.warning("lineage.fresh", columns=list(enc.columns),
                    previous=list(model_enc.columns) if model_enc else None)
        # A fresh model and replay sample, but the same stream: what was consumed stays consumed,
        # so ``records_seen`` stays exact and no record is counted twice across the lineage change.
        return dataclasses.replace(empty(), consumed=state.consumed, seen_count=state.seen_count,
                                   label_counts=state.label_counts), None
    assert state_enc is not None and model_enc is not None  # continues() checked both
    if state_enc != enc:
        state = dataclasses.replace(state, reservoir=migrate_reservoir(state.reservoir, state_enc, enc))
        log.info("lineage.state_migrated", columns=enc.width, previous=state_enc.width)
    if model is not None and model_enc != enc:
        model = widen(model, model_enc, enc)
        log.info("lineage.model_widened", columns=enc.width, previous=model_enc.width)
    return state, model


def migrate_reservoir(reservoir: Reservoir, old: Encoding, new: Encoding) -> Reservoir:
    """The reservoir with every stored feature matrix re-expressed in ``new`` (``Encoding.migrate``).

    Done on its own serialization (every array named ``x`` or ``*_x`` is a row matrix, ``meta`` holds
    ``n_features``), so the rows, labels, ids, counts and RNG state carry over whatever the layout."""
    with np.load(io.BytesIO(reservoir.to_bytes()), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["n_features"] = new.width
    for k, v in arrays.items():
        if k == "x" or k.endswith("_x"):
            arrays[k] = new.migrate(v.reshape(-1, old.width), old)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    return Reservoir.from_bytes(buf.getvalue())


def widen(model: Any, old: Encoding, new: Encoding) -> Any:
    """The model with its inputs re-laid out for ``new``: same answers on rows ``new.migrate`` made."""
    k = trainer.keras()
    mean, std = trainer.standardization(model)
    index = {c: j for j, c in enumerate(old.columns)}
    probe = new.migrate(np.zeros((1, old.width)), old)[0]  # what a new column holds for old rows
    new_mean = np.array([mean[index[c]] if c in index else probe[j] for j, c in enumerate(new.columns)])
    new_std = np.array([std[index[c]] if c in index else 1.0 for c in new.columns])
    dense = [layer for layer in model.layers if layer.name != trainer.STANDARDIZE]
    config = trainer.TrainConfig(hidden=tuple(int(layer.units) for layer in dense[:-1]))
    wider = trainer.build_model(new.width, int(dense[-1].units), new_mean, new_std, config)
    kernel, bias = dense[0].get_weights()
    rows = np.zeros((new.width, kernel.shape[1]), dtype=np.float32)
    for j, c in enumerate(new.columns):
        if c in index:
            rows[j] = kernel[index[c]]
    wider_dense = [layer for layer in wider.layers if layer.name != trainer.STANDARDIZE]
    wider_dense[0].set_weights([rows, bias])
    for src, dst in zip(dense[1:], wider_dense[1:], strict=True):
        dst.set_weights(src.get_weights())
    del k
    return wider
