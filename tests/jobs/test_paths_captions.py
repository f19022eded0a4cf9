"""Path allowlist (traversal corpus) and caption-file parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clipsearch.jobs.captions import CaptionFileError, parse_captions
from clipsearch.jobs.paths import PathRefused, expand, read_checked, resolve

EXTS = [".jpg", ".png"]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "top.jpg").write_bytes(b"top")
    (root / "a" / "one.PNG").write_bytes(b"one")
    (root / "a" / "b" / "two.jpg").write_bytes(b"two")
    (root / "a" / "notes.txt").write_text("skip me")
    (outside / "secret.jpg").write_bytes(b"secret")
    os.symlink(outside / "secret.jpg", root / "a" / "link-out.jpg")
    os.symlink(outside, root / "dir-out")
    os.symlink(root / "top.jpg", root / "a" / "link-in.jpg")
    return root, outside


def test_off_without_roots(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with pytest.raises(PathRefused, match="off"):
        resolve(str(root / "top.jpg"), [])


TRAVERSAL = [
    "../outside/secret.jpg",
    "a/../../outside/secret.jpg",
    "a/b/../../../outside",
    "{outside}/secret.jpg",
    "{root}/../outside/secret.jpg",
    "{root}/a/link-out.jpg",
    "{root}/dir-out/secret.jpg",
    "dir-out",
    "/etc/passwd",
    "/",
    "top.jpg\x00.png",
    "",
    "{root}/missing.jpg",
]


@pytest.mark.parametrize("raw", TRAVERSAL)
def test_traversal_corpus_refused(tree: tuple[Path, Path], raw: str) -> None:
    root, outside = tree
    with pytest.raises(PathRefused):
        list(expand(raw.format(root=root, outside=outside), [root], EXTS, limit=100))


def test_allowed_files_and_recursive_walk(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert resolve("top.jpg", [root]) == Path(os.path.realpath(root / "top.jpg"))
    assert resolve(str(root / "a" / ".." / "top.jpg"), [root]).name == "top.jpg"
    found = list(expand(str(root), [root], EXTS, limit=100))
    rels = [f.relative for f in found]
    # the extension filter is case-insensitive; the symlink *out* is skipped, the one in kept
    assert rels == ["top.jpg", "a/link-in.jpg", "a/one.PNG", "a/b/two.jpg"]
    assert all(f.path.is_relative_to(os.path.realpath(root)) for f in found)
    assert read_checked(found[-1].path, [root], 100) == b"two"
    with pytest.raises(PathRefused):
        read_checked(found[-1].path, [root], 2)  # byte cap
    with pytest.raises(PathRefused, match="more than 2 files"):
        list(expand(str(root), [root], EXTS, limit=2))


def test_captions_csv_and_token() -> None:
    csv_caps = parse_captions(
        b'image_path,caption\n./pics/a.jpg,"a red circle, small"\npics/b.jpg,blue square\n',
        "captions.csv",
    )
    assert csv_caps.lookup("pics/a.jpg") == ["a red circle, small"]
    assert csv_caps.lookup("/upload/elsewhere/b.jpg") == ["blue square"]  # base-name fallback
    assert csv_caps.lookup("c.jpg") == []
    token = parse_captions(
        b"1000_ab.jpg#0\tA child in pink.\n1000_ab.jpg#1\tA girl climbs.\n\n2_x.jpg#0\tA dog.\n",
        "Flickr8k.token.txt",
    )
    assert token.lookup("1000_ab.jpg") == ["A child in pink.", "A girl climbs."]
    assert token.lookup("imgs/2_x.jpg") == ["A dog."]
    with pytest.raises(CaptionFileError):
        parse_captions(b"just,some\nrandom,csv\n")
    with pytest.raises(CaptionFileError):
        parse_captions(b"a.jpg#0\tok\nbroken line\n", "x.token")
    with pytest.raises(CaptionFileError):
        parse_captions(b"\xff\xfe\x00bad")
