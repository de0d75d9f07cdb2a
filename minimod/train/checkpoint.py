"""Checkpoints: everything needed to continue a run exactly where it stopped, stored safely.

A checkpoint is one dict, saved with ``torch.save``:

    format, version     "minimod-checkpoint", 1 (so an old or foreign file is recognised)
    step                optimizer steps done
    model               model.state_dict()
    optimizer           optimizer.state_dict()     (AdamW's moving averages, step counts, lrs)
    scheduler           scheduler.state_dict() or None
    rng                 the random generators: torch (CPU, and CUDA/MPS when present), Python's
    data                the state of the data stream the caller registered, or None
    config              the run's configuration as plain JSON-able values
    trainer             the loop's own progress (best metric so far, evaluations without gain)

Why each part: restoring only the weights is not enough for an exact resume. AdamW's moments,
the schedule's position, the dropout masks (the RNG) and the next batch (the data state) all
decide what the next step does.

Safety: a ``.pt`` file is a pickle, and unpickling can run arbitrary code. Every value here is a
tensor or plain data (dict, list, tuple, str, int, float, bool, None), so it is read back with
``torch.load(path, weights_only=True)``, which refuses anything else. ``save_checkpoint`` checks
this before writing, and writes atomically (temp file, fsync, rename): a run killed at any
moment leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

FORMAT = "minimod-checkpoint"
VERSION = 1
_PLAIN = (str, int, float, bool, type(None))


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written, read, or used for this run; the message says why."""


# -- plain data -------------------------------------------------------------------------------
def to_plain(value: Any) -> Any:
    """A JSON-able copy of a configuration: dataclasses and mappings become dicts, tuples
    become lists, paths and dtypes become strings. Anything else raises TypeError."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, (Path, torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, _PLAIN):
        return value
    raise TypeError(f"to_plain: cannot store a {type(value).__name__} in a config: {value!r}")


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Raise CheckpointError, naming the entry, if ``value`` holds anything that
    ``torch.load(weights_only=True)`` would refuse (so the failure comes at save time)."""
    if type(value) is torch.Tensor or isinstance(value, _PLAIN):
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"{where}: key {key!r} is a {type(key).__name__}")
            check_plain(item, f"{where}.{key}")
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    hint = " (save tensor.detach() instead)" if isinstance(value, torch.Tensor) else ""
    raise CheckpointError(
        f"{where} is a {type(value).__name__}{hint}; a checkpoint holds only tensors and plain "
        "data (dict, list, tuple, str, int, float, bool, None), so that "
        "torch.load(weights_only=True) can read it back without running code"
    )


# -- random generators and data streams ----------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed the global generators (torch's CPU and GPU ones, Python's). Call it before building
    the model, so that initialisation is repeatable too."""
    random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every global random generator the loop uses (dropout, shuffles, …)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what ``rng_state`` returned (a GPU's state is skipped on a machine without)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def state_of(stateful: Any) -> Any:
    """The state of a data stream: a ``torch.Generator``, an object with ``state_dict()``, or
    a dict of such objects by name."""
    if isinstance(stateful, torch.Generator):
        return stateful.get_state()
    if isinstance(stateful, Mapping):
        return {name: state_of(item) for name, item in stateful.items()}
    return stateful.state_dict()


def load_state_of(stateful: Any, state: Any) -> None:
    """Put ``state`` (from ``state_of``) back into the same kind of object."""
    if isinstance(stateful, torch.Generator):
        stateful.set_state(state)
    elif isinstance(stateful, Mapping):
        for name, item in stateful.items():
            load_state_of(item, state[name])
    else:
        stateful.load_state_dict(state)


# -- configurations ---------------------------------------------------------------------------
def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, dict):
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: config}


def config_differences(saved: Any, current: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """Each dotted key (e.g. "model.n_embd") whose value differs, as "key (checkpoint A, now B)";
    keys in ``ignore`` may differ."""
    old, new = _flatten(to_plain(saved)), _flatten(to_plain(current))
    differences = []
    for key in sorted(old.keys() | new.keys()):
        if key in ignore or (key in old and key in new and old[key] == new[key]):
            continue
        was, now = (repr(side[key]) if key in side else "absent" for side in (old, new))
        differences.append(f"{key} (checkpoint {was}, now {now})")
    return differences


def check_config(
    checkpoint: Mapping[str, Any], current: Any, ignore: tuple[str, ...], path: Any
) -> None:
    """Raise CheckpointError naming every differing key, if the run being resumed is set up
    differently from the checkpoint's (say, another model size)."""
    differences = config_differences(checkpoint["config"], current, ignore)
    if differences:
        raise CheckpointError(
            f"cannot resume from {path}: the run's config differs from the checkpoint's in "
            + "; ".join(differences)
            + ". Use the checkpoint's settings, or start a new run in another out_dir"
        )


# -- building, saving, loading, restoring ---------------------------------------------------
def make_checkpoint(
    step: int,
    model: Any,
    optimizer: Any,
    scheduler: Any = None,
    data: Any = None,
    config: Any = None,
    trainer: Mapping[str, Any] | None = None,
    trainable_only: bool = False,
) -> dict[str, Any]:
    """The checkpoint dict of a run at ``step`` (see the module docstring); trainable_only:
    the model's part holds only the parameters that require gradients."""
    state = model.state_dict()
    if trainable_only:
        names = {name for name, p in model.named_parameters() if p.requires_grad}
        state = {name: value for name, value in state.items() if name in names}
    return {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "model": state,
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_state(),
        "data": None if data is None else state_of(data),
        "config": to_plain(config),
        "trainer": dict(trainer or {}),
    }


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | Path) -> None:
    """Write atomically: to a temp file in the same folder, fsync, then ``os.replace``.

    ``os.replace`` within one folder (one filesystem) is atomic: readers see the old file or the
    new one. fsync first, so the rename never points at data still in the OS's buffers.
    """
    path = Path(path)
    check_plain(dict(checkpoint))
    path.parent.mkdir(parents=True, exist_ok=True)
    # BEGIN SOLUTION
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "wb") as file:
            torch.save(dict(checkpoint), file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    # END SOLUTION


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: a file that would run code is refused."""
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own message suggests weights_only=False, which would run the file's code.
        raise CheckpointError(
            f"{path} holds something other than tensors and plain data: refusing to load it "
            "(unpickling it could run arbitrary code)"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a minimod training checkpoint (no format {FORMAT!r}); for bare "
            "weights use model.load_state_dict(torch.load(path, weights_only=True))"
        )
    if checkpoint.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {checkpoint['version']}, newer than this "
            f"minimod reads ({VERSION}); update minimod"
        )
    return checkpoint


def load_trainable(model: Any, state: Mapping[str, torch.Tensor]) -> None:
    """Load a state holding exactly ``model``'s trainable parameters; anything else is refused
    in one CheckpointError (a checkpoint of another trainable set would half-load)."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(trainable - set(state)), sorted(set(state) - trainable)
    if missing or unexpected:
        raise CheckpointError(
            f"the checkpoint does not hold this model's trainable parameters: missing "
            f"{missing[:3] or 'none'}, unexpected {unexpected[:3] or 'none'}"
        )
    model.load_state_dict(state, strict=False)


def restore_checkpoint(
    checkpoint: Mapping[str, Any],
    model: Any,
    optimizer: Any = None,
    scheduler: Any = None,
    data: Any = None,
    trainable_only: bool = False,
) -> int:
    """Load every part into the given objects (strictly) and the global RNGs; return the step.
    trainable_only: the checkpoint holds exactly the model's parameters that require gradients
    (``make_checkpoint(..., trainable_only=True)``); the others keep their values.

    Load the model before the optimizer: the optimizer's state is moved to where the
    parameters are.
    """
    if trainable_only:
        load_trainable(model, checkpoint["model"])
    else:
        model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint["scheduler"] is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    if data is not None:
        if checkpoint["data"] is None:
            raise CheckpointError("the checkpoint has no data state to restore the data stream")
        load_state_of(data, checkpoint["data"])
    set_rng_state(checkpoint["rng"])
    return checkpoint["step"]
