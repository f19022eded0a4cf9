"""The ``clipsearch`` subcommands, one module each (see :mod:`clipsearch.cli`)."""

from __future__ import annotations


def api_key() -> str | None:
    """The key the CLI sends to a gateway: ``CLIPSEARCH_API_KEY`` (or ``.env``), if set."""
    from clipsearch.core.config import get_settings

    return get_settings().api_key.get_secret_value() or None
