"""schemathesis over the whole OpenAPI document, in-process: every operation through the
examples, coverage (boundary values) and fuzzing phases, positive and negative, from a fixed
seed with bounded examples; then the stateful phase along the document's links (ingest ->
job, upload -> image, texts -> text). No response may be a server error, and every response
must be documented: its status, content type and body schema.

The app is real (the bundled tiny model, Milvus Lite in a temp dir). The document is taken
from the app object, so importing this module starts nothing; schemathesis' ASGI client
starts the app's lifespan on the first call and the module fixture stops it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import hypothesis.errors
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.demo import shapes
from tests.helpers import SHAPES_MODEL, encoded

SEED = 20261201
MAX_EXAMPLES = 60  # per operation and phase: the whole module well under 2 min on 2 cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
COUNTS = {"cases": 0, "failures": 0}
pytestmark = pytest.mark.slow

DATA_DIR = Path(tempfile.mkdtemp(prefix="clipsearch-fuzz-"))
APP = create_app(
    Settings(
        _env_file=None,
        data_dir=DATA_DIR,
        model_path=SHAPES_MODEL,
        max_upload_bytes=256 * 1024,
        max_request_bytes=2 * 1024 * 1024,
        max_top_k=20,
        max_batch_queries=8,
        max_files_per_request=4,
        max_texts_per_request=16,
        fetch_timeout_s=1.0,
        ingest_max_items_per_job=32,
    )
)
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "no-shrink": True,
        },
        "phases": {"stateful": {"max-steps": 8}},
    }
)
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _app_running() -> Iterator[None]:
    # A few stored pictures, so image ids, files and searches have something to find.
    with asgi.get_client(cast(Any, APP)) as client:
        files = [
            ("files", (f"s{i}.png", encoded(image), "image/png"))
            for i, (image, _) in enumerate(shapes.iter_samples(3, seed=3))
        ]
        r = client.post("http://testserver/v1/images", files=files)
        assert r.status_code == 200, r.text
    yield
    asgi.shutdown_lifespans()
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    print(f"\nschemathesis: {COUNTS['cases']} cases, {COUNTS['failures']} failed")


def _call(case: Any) -> Any:
    COUNTS["cases"] += 1
    try:
        return case.call_and_validate(checks=CHECKS)
    except Exception:
        COUNTS["failures"] += 1
        raise


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any) -> None:
    _call(case)


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Chains along the OpenAPI links, with the same checks on every step."""

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, checks=CHECKS)

    def call(self, case: Any, **kwargs: Any) -> Any:
        COUNTS["cases"] += 1
        response = case.call(**kwargs)
        if case.method.upper() == "POST" and case.path == "/v1/ingest":
            _wait_for_job(response)
        return response


def _wait_for_job(response: Any) -> None:
    """Let an accepted ingest job finish before the next step.

    Hypothesis replays a scenario's choices and expects the same rules to be enabled;
    a job still running in the background makes the next step's answer (a cancel: 200 or
    409) depend on timing, which it reports as "inconsistent data generation". A job that
    has finished answers the same every time."""
    if response.status_code not in (200, 202):
        return
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 60
    with asgi.get_client(cast(Any, APP)) as client:
        while time.monotonic() < deadline:
            job = client.get(f"http://testserver/v1/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running"):
                return
            time.sleep(0.05)
    raise AssertionError(f"ingest job {job_id} still running after 60 s")


def _wait_for_idle_jobs() -> None:
    deadline = time.monotonic() + 120
    with asgi.get_client(cast(Any, APP)) as client:
        while time.monotonic() < deadline:
            busy = [
                job
                for status in ("queued", "running")
                for job in client.get(f"http://testserver/v1/jobs?status={status}").json()["jobs"]
            ]
            if not busy:
                return
            time.sleep(0.1)
    raise AssertionError("ingest jobs still running after 120 s")


def test_linked_workflows_answer_as_documented() -> None:
    # Steps wait for the jobs they start (see _wait_for_job), so a replayed scenario meets
    # the same app state. A second run is still allowed once: hypothesis' own replay can
    # meet the end of a job's retention or a flush in between.
    _wait_for_idle_jobs()  # the parametrized cases' jobs, too
    for attempt in range(2):
        try:
            Workflow.run()
            return
        except hypothesis.errors.FlakyStrategyDefinition:
            if attempt == 1:
                raise
