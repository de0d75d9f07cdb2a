"""One process per run folder: while a run trains into a folder, it holds an OS lock on the
folder's ``run.lock`` (``fcntl.flock``), and a second process given the same folder refuses.

The OS drops the lock when the holder ends in any way (a crash, ``kill -9``), so a stale lock
never blocks a new run; the file itself stays (it only names the last holder's process id).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from minimod.tasks.common import UsageError

LOCK_FILE = "run.lock"


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/run.lock`` for the block (creating the folder), or raise UsageError when
    another process holds it. A folder the block created and left empty but for the lock (a
    usage error before anything was written) is removed again."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "?"
            raise UsageError(
                f"{run_dir} is in use: another process (pid {holder}) is training into it; "
                "wait for it to end, or pick another --out"
            ) from None
        file.truncate(0)
        file.write(f"{os.getpid()}\n")
        file.flush()
        try:
            yield
        finally:
            if created and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                path.unlink()
                run_dir.rmdir()
