"""Server-side path ingest, confined to allowlisted roots.

A path is accepted only when its *real* path (symlinks resolved) is one of the roots or
lies under one. ``..`` tricks, absolute escapes, symlinks pointing out and NUL bytes are
refused. With no roots configured, path ingest is off.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class PathRefused(ValueError):
    """The path is outside the allowed roots, missing, or malformed."""


@dataclass(frozen=True, slots=True)
class FoundFile:
    source: str  # as the user wrote it (a directory entry: the dir's spelling + the rest)
    path: Path  # real path, checked to be under a root
    relative: str  # path relative to the directory the user gave (for caption lookup)


def _real_roots(roots: Iterable[Path]) -> list[Path]:
    return [Path(os.path.realpath(r)) for r in roots]


def _under(real: Path, roots: Sequence[Path]) -> bool:
    return any(real == root or real.is_relative_to(root) for root in roots)


def resolve(raw: str, roots: Sequence[Path]) -> Path:
    """The real path of ``raw`` if it exists under a root; :class:`PathRefused` otherwise.

    A relative ``raw`` is taken relative to each root in turn.
    """
    if not roots:
        raise PathRefused("path ingest is off (no CLIPSEARCH_INGEST_ROOTS configured)")
    if not raw or "\x00" in raw:
        raise PathRefused("empty path or NUL byte in path")
    real_roots = _real_roots(roots)
    given = Path(raw)
    candidates = [given] if given.is_absolute() else [root / given for root in real_roots]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if _under(real, real_roots):
            if not real.exists():
                raise PathRefused(f"{raw}: no such file or directory")
            return real
    raise PathRefused(f"{raw}: outside the allowed ingest roots")


def expand(
    raw: str, roots: Sequence[Path], extensions: Iterable[str], *, limit: int
) -> Iterator[FoundFile]:
    """Files named by ``raw``: itself, or every file under it (recursive, sorted) whose
    extension is allowed. Symlinked directories are not descended into; a symlinked file
    is yielded only if its target is under a root. Raises :class:`PathRefused`."""
    real = resolve(raw, roots)
    real_roots = _real_roots(roots)
    if real.is_file():
        yield FoundFile(source=raw, path=real, relative=real.name)
        return
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    count = 0
    for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in exts:
                continue
            entry = Path(dirpath) / name
            target = Path(os.path.realpath(entry))
            if not _under(target, real_roots) or not target.is_file():
                continue  # a symlink out of the roots (or a dangling one): skipped
            rel = entry.relative_to(real).as_posix()
            count += 1
            if count > limit:
                raise PathRefused(f"{raw}: more than {limit} files")
            yield FoundFile(source=f"{raw.rstrip('/')}/{rel}", path=target, relative=rel)


def read_checked(path: Path, roots: Sequence[Path], max_bytes: int) -> bytes:
    """Read a file found earlier, re-checking the roots (it may have changed since)."""
    real = Path(os.path.realpath(path))
    if not _under(real, _real_roots(roots)):
        raise PathRefused(f"{path}: outside the allowed ingest roots")
    data = read_regular(real, max_bytes + 1)
    if len(data) > max_bytes:
        raise PathRefused(f"{path}: more than {max_bytes} bytes")
    return data


def read_regular(path: Path, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``path``, which must be a regular file *once opened*.

    Opened with ``O_NONBLOCK`` so that a FIFO (or a device) swapped in after the job was
    submitted cannot block the open itself (a FIFO's open waits for a writer), then
    ``fstat``-checked on the descriptor, so no swap between check and read is possible.
    A read that still stalls (a hung network mount) is bounded by the caller's deadline.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRefused(f"{path}: not a regular file")
        os.set_blocking(fd, True)  # a regular file: reads are plain blocking reads
        with os.fdopen(fd, "rb") as f:
            fd = -1  # owned by f now
            return f.read(limit)
    finally:
        if fd >= 0:
            os.close(fd)
