"""API keys: scopes, the salted-hash entry format, and a key ring that checks presented keys.

A key is a random secret shown once (``clipsearch keys add``); the server only ever holds an
*entry*, one line of the form::

    <scope>:<name>:scrypt:<salt hex>:<hash hex>

``scope`` is ``read``, ``write`` or ``admin``; ``name`` says whose key it is (it is recorded
on the jobs the key creates, and it is what logs may show). The hash is
``hashlib.scrypt(key, salt, n=2**14, r=8, p=1, dklen=32)``: standard library, memory-hard,
and slow enough (tens of ms) that a leaked entry cannot be brute-forced, which is also why a
:class:`KeyRing` remembers keys it has verified. Fields are separated by ``:`` and encoded in
hex, not ``$``: a ``$`` in a ``.env`` file is variable interpolation to docker compose.

Pure standard library: no web framework, no I/O besides reading a keys file.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

ALGORITHM = "scrypt"
# scrypt cost: 16 MiB of memory and ~30-60 ms per check on one core.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
KEY_PREFIX = "cs_"  # makes a leaked key easy to spot (secret scanners, grep)
_ENTRY = re.compile(
    r"^(?P<scope>[a-z]+):(?P<name>[A-Za-z0-9_.-]{1,64}):scrypt:"
    r"(?P<salt>[0-9a-f]{32}):(?P<hash>[0-9a-f]{64})$"
)
_CACHE_SIZE = 1024


class Scope(IntEnum):
    """What a key may do; each scope includes the ones below it."""

    read = 1  # search, get, stats, its own jobs
    write = 2  # + upload, ingest, delete, cancel
    admin = 3  # + create collections, everyone's jobs, server paths in job items

    @classmethod
    def parse(cls, text: str) -> Scope:
        try:
            return cls[text]
        except KeyError:
            raise ValueError(f"unknown scope {text!r} (read, write or admin)") from None


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One configured key: who, what it may do, and its salted hash (never the key)."""

    scope: Scope
    name: str
    salt: bytes
    digest: bytes

    def line(self) -> str:
        """The entry as configured: ``scope:name:scrypt:salt:hash``."""
        return f"{self.scope.name}:{self.name}:{ALGORITHM}:{self.salt.hex()}:{self.digest.hex()}"

    def matches(self, key: str) -> bool:
        """Constant-time check of ``key`` against this entry's hash."""
        return hmac.compare_digest(_derive(key, self.salt), self.digest)


def _derive(key: str, salt: bytes) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)


def new_key() -> str:
    """A fresh random key: 256 bits, URL-safe, with a recognisable prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def make_entry(key: str, scope: Scope, name: str) -> KeyEntry:
    """The entry to configure for ``key`` (a new random salt each time)."""
    if not re.match(NAME_PATTERN, name):
        raise ValueError(f"key name {name!r} must match {NAME_PATTERN}")
    salt = secrets.token_bytes(16)
    return KeyEntry(scope, name, salt, _derive(key, salt))


def parse_entry(line: str) -> KeyEntry:
    """One entry; ``ValueError`` saying what is wrong (the hash itself is never echoed)."""
    m = _ENTRY.match(line.strip())
    if m is None:
        head = line.strip().split(":", 2)[:2]
        raise ValueError(
            f"API key entry {':'.join(head)!r}... is not scope:name:scrypt:<32 hex>:<64 hex>"
            " (make one with `clipsearch keys add`)"
        )
    return KeyEntry(
        Scope.parse(m["scope"]), m["name"], bytes.fromhex(m["salt"]), bytes.fromhex(m["hash"])
    )


def load_entries(inline: Iterable[str], file: Path | None) -> list[KeyEntry]:
    """Entries from the setting (already split) and the keys file (one per line; blank
    lines and ``#`` comments skipped)."""
    lines = [s for s in inline if s.strip()]
    if file is not None:
        text = file.read_text("utf-8")
        lines += [s for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
    return [parse_entry(s) for s in lines]


class KeyRing:
    """Checks presented keys against the configured entries.

    A scrypt check per request would cost tens of ms of CPU, so a key once verified is
    remembered, keyed by HMAC-SHA256 of the key under a per-process secret: the cache holds
    no key, and a lookup takes microseconds. Failures are not cached (random keys would
    only fill it); the caller rate-limits unverified attempts instead.
    """

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self.entries = list(entries)
        self._secret = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, KeyEntry] = OrderedDict()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _tag(self, key: str) -> bytes:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).digest()

    def cached(self, key: str) -> KeyEntry | None:
        """The entry of a key verified before, without any slow hash."""
        tag = self._tag(key)
        with self._lock:
            entry = self._verified.get(tag)
            if entry is not None:
                self._verified.move_to_end(tag)
            return entry

    def verify(self, key: str) -> KeyEntry | None:
        """The entry ``key`` belongs to, or ``None``; slow on a miss (run it in a thread)."""
        entry = self.cached(key)
        if entry is not None:
            return entry
        # Every entry is checked, match or not, so timing does not tell which one matched.
        found = None
        for candidate in self.entries:
            if candidate.matches(key) and found is None:
                found = candidate
        if found is not None:
            with self._lock:
                self._verified[self._tag(key)] = found
                while len(self._verified) > _CACHE_SIZE:
                    self._verified.popitem(last=False)
        return found


__all__ = [
    "KEY_PREFIX",
    "NAME_PATTERN",
    "KeyEntry",
    "KeyRing",
    "Scope",
    "load_entries",
    "make_entry",
    "new_key",
    "parse_entry",
]
