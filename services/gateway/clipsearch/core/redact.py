"""What a job item may show: URLs without their credentials, server paths as file names."""

from __future__ import annotations

import re
from pathlib import PurePath

# scheme://user:pass@host -> scheme://***@host, wherever a URL appears in a text.
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


def redact_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    return _CREDENTIALS.sub(r"\1***@", text)


def hide_path(text: str, path: str) -> str:
    """``text`` with the server path ``path`` shortened to its file name."""
    return text.replace(path, PurePath(path).name) if path else text
