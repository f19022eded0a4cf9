"""One error vocabulary: every kind has one HTTP status, raised errors keep their code."""

from __future__ import annotations

import ast
import inspect
import sys

from clipsearch.api.errors import STATUS, status_of
from clipsearch.core import errors
from clipsearch.core.errors import ClipsearchError, InvalidRequest, TooManyRequests
from clipsearch.encoder.protocol import ImageDecodeError
from clipsearch.jobs.runner import QueueFull


def _kinds() -> list[type[ClipsearchError]]:
    return [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, ClipsearchError) and c is not ClipsearchError
    ]


def test_every_kind_has_a_status_and_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for cls in _kinds():
        assert cls.kind in STATUS, cls
        assert cls.__name__ in doc, f"{cls.__name__} missing from the hierarchy drawing"


def test_core_errors_imports_only_the_standard_library() -> None:
    tree = ast.parse(inspect.getsource(errors))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                top = (name or "").split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", name


def test_codes_travel_with_the_error() -> None:
    bomb = ImageDecodeError("image too large", code="image_too_large")
    assert isinstance(bomb, InvalidRequest)
    assert isinstance(bomb, ValueError)
    assert (bomb.code, status_of(bomb)) == ("image_too_large", 422)
    assert ImageDecodeError("broken").code == "invalid_image"
    busy = QueueFull(pending=7, retry_after=3)
    assert isinstance(busy, TooManyRequests)
    assert (status_of(busy), busy.code, busy.retry_after_s) == (429, "too_many_requests", 3)
    assert busy.details == {"pending_items": 7}
    again = bomb.with_details([1])
    assert type(again) is ImageDecodeError
    assert (again.code, again.message, again.details) == ("image_too_large", bomb.message, [1])
    busy_items = busy.with_details({"pending_items": 8})
    assert type(busy_items) is QueueFull
    assert (busy_items.retry_after_s, busy_items.details, str(busy_items)) == (
        3,
        {"pending_items": 8},
        str(busy),
    )
