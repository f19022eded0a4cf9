"""OpenAPI links: which response value feeds which next operation (a stored image's id ->
its record, file, thumbnail, delete; a job's id -> its status and cancel). Clients read
them as documentation; schemathesis' stateful phase follows them.

Operations are named by the ids FastAPI derives from the route functions.
"""

from __future__ import annotations

from typing import Any


def _link(operation_id: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


_FIRST_ITEM = "$response.body#/items/0/id"

STORED_IMAGE: dict[str, Any] = {
    "GetImage": _link("get_image_v1_images__image_id__get", image_id=_FIRST_ITEM),
    "GetImageFile": _link("get_image_file_v1_images__image_id__file_get", image_id=_FIRST_ITEM),
    "GetImageThumbnail": _link(
        "get_image_thumbnail_v1_images__image_id__thumbnail_get", image_id=_FIRST_ITEM
    ),
    "DeleteImage": _link("delete_image_v1_images__image_id__delete", image_id=_FIRST_ITEM),
}
STORED_TEXT: dict[str, Any] = {
    "DeleteText": _link("delete_text_v1_texts__text_id__delete", text_id=_FIRST_ITEM),
}
ACCEPTED_JOB: dict[str, Any] = {
    "GetJob": _link("get_job_v1_jobs__job_id__get", job_id="$response.body#/job_id"),
    "CancelJob": _link("cancel_job_v1_jobs__job_id__delete", job_id="$response.body#/job_id"),
}

__all__ = ["ACCEPTED_JOB", "STORED_IMAGE", "STORED_TEXT"]
