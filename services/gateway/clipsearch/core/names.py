"""The one definition of a collection name, shared by config, API, use-cases and store.

A name becomes part of Milvus collection names (``<name>_images``), so it is kept to what
every Milvus accepts: 1 to 64 letters, digits and underscores.
"""

from __future__ import annotations

import re

COLLECTION_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
COLLECTION_RE = re.compile(COLLECTION_PATTERN)
