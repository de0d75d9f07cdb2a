"""Reading files out of downloaded archives safely, and writing them atomically: what a data
set's ``prepare`` step needs (see ``vader.prepare_vader``)."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

MAX_MEMBER_BYTES = 64 * 1024 * 1024  # refuse to read a larger archive member into memory


def write_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` all at once (a temporary file, then a rename), readable by all."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0o600; the cache may be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_member(
    archive: tarfile.TarFile, wanted: tuple[str, ...], under_top: bool, source: str, what: str
) -> bytes:
    """The bytes of the one regular file whose path is ``wanted``, below one top folder of any
    plain name when ``under_top`` (an sdist's ``name-version/``). Member names are only
    compared, never used to build a path, so a member such as ``../evil`` is never written.
    ``source`` (the archive's path) and ``what`` (what the archive should be) word the errors;
    a link, a missing, repeated or oversized member is a ValueError."""
    matches = []
    for member in archive.getmembers():
        parts = PurePosixPath(member.name).parts
        if under_top:
            if len(parts) != len(wanted) + 1 or parts[0] in ("/", ".", ".."):
                continue
            parts = parts[1:]
        if parts == wanted:
            matches.append(member)
    name = "/".join(wanted)
    if not matches:
        raise ValueError(f"{source}: no member {name!r} (is this {what}?)")
    if len(matches) > 1:
        raise ValueError(f"{source}: {len(matches)} members named {name!r}; expected one")
    member = matches[0]
    if not member.isfile():
        raise ValueError(f"{source}: member {member.name!r} is not a regular file")
    if member.size > MAX_MEMBER_BYTES:
        raise ValueError(f"{source}: member {member.name!r} is {member.size} bytes; too large")
    file = archive.extractfile(member)
    if file is None:  # pragma: no cover - isfile() members always have data
        raise ValueError(f"{source}: cannot read member {member.name!r}")
    return file.read()
