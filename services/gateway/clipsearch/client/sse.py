"""Server-sent events, as the gateway sends them (``event:``, ``data:`` lines, a blank line
after each event, ``:`` comments as keep-alives): parsed from a line iterator."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(event name, decoded JSON data)`` for each complete event; comments are skipped
    and an event without ``event:`` is called ``message``, as the SSE standard says."""
    name, data = "", list[str]()
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield name or "message", json.loads("\n".join(data))
            name, data = "", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data:  # a stream cut after its last data line
        yield name or "message", json.loads("\n".join(data))
