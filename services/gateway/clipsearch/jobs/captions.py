"""Caption files: ``captions.csv`` (``image_path,caption``) and Flickr ``*.token``
(``name#n<TAB>caption``). An image may have several captions (Flickr gives five)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import PurePosixPath

_TOKEN_LINE = re.compile(r"^(?P<name>[^\t#]+)#\d+\t(?P<caption>.*)$")


class CaptionFileError(ValueError):
    """The caption file is not one of the supported formats."""


class Captions:
    """Captions by image name; lookup tries the exact path, then the file's base name."""

    def __init__(self, entries: dict[str, list[str]] | None = None) -> None:
        self._exact: dict[str, list[str]] = {}
        self._base: dict[str, list[str]] = {}
        for key, values in (entries or {}).items():
            for value in values:
                self.add(key, value)

    def add(self, name: str, caption: str) -> None:
        caption = caption.strip()
        if not caption:
            return
        key = _norm(name)
        self._exact.setdefault(key, []).append(caption)
        self._base.setdefault(PurePosixPath(key).name, []).append(caption)

    def lookup(self, *names: str) -> list[str]:
        for name in names:
            if name and (hit := self._exact.get(_norm(name))):
                return list(hit)
        for name in names:
            if name and (hit := self._base.get(PurePosixPath(_norm(name)).name)):
                return list(hit)
        return []

    def __len__(self) -> int:
        return len(self._exact)

    def items(self) -> list[tuple[str, list[str]]]:
        """(image name, its captions) in the order the file first names each image."""
        return [(name, list(caps)) for name, caps in self._exact.items()]


def _norm(name: str) -> str:
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def parse_captions(data: bytes, filename: str = "") -> Captions:
    """Parse a caption file; the format is told by the name, else by the first line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptionFileError("caption file is not UTF-8") from exc
    first = next((line for line in text.splitlines() if line.strip()), "")
    if filename.endswith(".token") or _TOKEN_LINE.match(first):
        return _parse_token(text)
    return _parse_csv(text)


def _parse_token(text: str) -> Captions:
    out = Captions()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _TOKEN_LINE.match(line)
        if match is None:
            raise CaptionFileError(f"line {number}: expected 'name#n<TAB>caption'")
        out.add(match["name"], match["caption"])
    return out


def _parse_csv(text: str) -> Captions:
    rows = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(rows, [])]
    if "caption" not in header:
        raise CaptionFileError("CSV needs a header with image_path (or image) and caption")
    name_col = next((header.index(h) for h in ("image_path", "image", "path") if h in header), -1)
    if name_col < 0:
        raise CaptionFileError("CSV needs an image_path column")
    cap_col = header.index("caption")
    out = Captions()
    for row in rows:
        if len(row) > max(name_col, cap_col):
            out.add(row[name_col], row[cap_col])
    return out
