"""API key entries, the key ring, the rate limiter, and ``clipsearch keys add``."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipsearch import cli
from clipsearch.core.config import Settings
from clipsearch.core.keys import (
    KEY_PREFIX,
    KeyRing,
    Scope,
    load_entries,
    make_entry,
    new_key,
    parse_entry,
)
from clipsearch.core.ratelimit import RateLimiter
from clipsearch.core.redact import hide_path, redact_credentials


def test_entry_round_trip() -> None:
    key = new_key()
    assert key.startswith(KEY_PREFIX)
    assert len(key) > 40
    entry = make_entry(key, Scope.write, "ci-bot")
    line = entry.line()
    scope, name, algorithm, salt, digest = line.split(":")
    assert (scope, name, algorithm) == ("write", "ci-bot", "scrypt")
    assert len(salt) == 32
    assert len(digest) == 64
    assert "$" not in line  # compose would interpolate it in .env
    assert key not in line
    parsed = parse_entry(line)
    assert parsed == entry
    assert parsed.matches(key)
    assert not parsed.matches(key + "x")
    # A fresh salt each time: the same key gives another entry.
    assert make_entry(key, Scope.write, "ci-bot").line() != line


@pytest.mark.parametrize(
    "line",
    [
        "",
        "write:ci",
        "super:ci:scrypt:" + "0" * 32 + ":" + "0" * 64,  # unknown scope
        "write:c i:scrypt:" + "0" * 32 + ":" + "0" * 64,  # bad name
        "write:ci:pbkdf2:" + "0" * 32 + ":" + "0" * 64,  # other algorithm
        "write:ci:scrypt:" + "0" * 31 + ":" + "0" * 64,  # short salt
    ],
)
def test_bad_entries_are_refused_without_echoing_the_hash(line: str) -> None:
    with pytest.raises(ValueError, match=r"scope|entry") as info:
        parse_entry(line)
    assert "0" * 64 not in str(info.value)


def test_scopes_are_ordered() -> None:
    assert Scope.read < Scope.write < Scope.admin
    assert Scope.parse("admin") is Scope.admin
    with pytest.raises(ValueError, match="read, write or admin"):
        Scope.parse("root")


def test_entries_from_the_setting_and_the_file(tmp_path: Path) -> None:
    a, b = new_key(), new_key()
    file = tmp_path / "keys"
    file.write_text(f"# team keys\n\n{make_entry(b, Scope.admin, 'ops').line()}\n")
    entries = load_entries([make_entry(a, Scope.read, "viewer").line(), " "], file)
    assert [(e.name, e.scope) for e in entries] == [("viewer", Scope.read), ("ops", Scope.admin)]
    settings = Settings(_env_file=None, api_keys="x, y", api_keys_file=str(file))
    assert settings.api_keys == ["x", "y"]
    assert settings.api_keys_file == file


def test_key_ring_remembers_verified_keys_only() -> None:
    good = new_key()
    ring = KeyRing([make_entry(new_key(), Scope.read, "other"), make_entry(good, Scope.write, "w")])
    assert ring.cached(good) is None
    entry = ring.verify(good)
    assert entry is not None
    assert entry.name == "w"
    assert ring.cached(good) is entry
    assert ring.verify("cs_wrong") is None
    assert ring.cached("cs_wrong") is None
    # The cache is keyed by an HMAC of the key, never the key itself.
    assert all(good.encode() not in tag for tag in ring._verified)
    assert not KeyRing([])


def test_token_bucket() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # buckets are per client
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=0, burst=1)


def test_redaction() -> None:
    text = "fetch https://user:s3cret@img.example/a.png failed; see http://x@y.example/"
    out = redact_credentials(text)
    assert "s3cret" not in out
    assert "user" not in out
    assert "https://***@img.example/a.png" in out
    assert "http://***@y.example/" in out
    assert redact_credentials("https://img.example/a@b.png") == "https://img.example/a@b.png"
    assert hide_path("cannot read /srv/photos/a.png", "/srv/photos/a.png") == "cannot read a.png"


def test_keys_add_prints_the_key_once_and_a_usable_entry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["keys", "add", "--scope", "write", "--name", "ci"]) == 0
    out = capsys.readouterr()
    key, line = out.out.splitlines()
    assert out.out.count(key) == 1
    assert key not in out.err
    assert "CLIPSEARCH_API_KEYS" in out.err
    entry = parse_entry(line)
    assert (entry.scope, entry.name) == (Scope.write, "ci")
    assert entry.matches(key)
    # Usable as configuration as printed.
    settings = Settings(_env_file=None, api_keys=line)
    assert KeyRing(load_entries(settings.api_keys, None)).verify(key) == entry


def test_keys_add_refuses_a_bad_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "add", "--scope", "read", "--name", "a b"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "must match" in out.err
