"""An on-disk cache for generated datasets, so a large set is made once and then loaded.

Files live in ``~/.cache/minimod`` (or the folder named by the environment variable
``MINIMOD_CACHE``), one ``.pt`` file per dataset, named by the generator, its version and a hash
of its arguments: ``shapes-v1-3f2a9c0d1e4b5a6c.pt``. A generator bumps its version whenever its
output changes, so a stale file is never read. Files are written atomically (a temporary file in
the same folder, then ``os.replace``), so an interrupted run never leaves half a file behind, and
read with ``torch.load(..., weights_only=True)``, which loads tensors, numbers, strings, lists and
dicts but never unpickles code. Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "MINIMOD_CACHE"


def cache_dir() -> Path:
    """``$MINIMOD_CACHE`` if set, else ``~/.cache/minimod`` (created on first write)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "minimod")


def cache_path(name: str, version: int, params: dict[str, Any]) -> Path:
    """Where the output of generator ``name`` (at ``version``) for ``params`` is cached."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{name}-v{version}:{text}".encode()).hexdigest()[:16]
    return cache_dir() / f"{name}-v{version}-{digest}.pt"


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached(name: str, version: int, params: dict[str, Any], make: Callable[[], dict]) -> dict:
    """The dict ``make()`` returns, loaded from the cache when an earlier call saved it.

    ``params`` (JSON-serialisable) must hold every argument that changes the output. A cache
    file that cannot be read (truncated, from another torch) is regenerated and replaced.
    """
    path = cache_path(name, version, params)
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # unreadable: fall through and rewrite it
            pass
    data = make()
    save_atomic(data, path)
    return data
