"""scripts/link_torch.py: the two torch venvs share one copy of torch's files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "link_torch.py"
# The venvs' lib/pythonX.Y folder: the fakes must match the interpreter that makes the real one.
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _fake_dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """A distribution as pip leaves it: its files, METADATA and a RECORD listing them."""
    dist_info = f"{name}-{version}.dist-info"
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (site / dist_info).mkdir(parents=True)
    (site / dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    (site / dist_info / "INSTALLER").write_text("pip\n")
    rows = [*files, f"{dist_info}/METADATA", f"{dist_info}/INSTALLER", f"{dist_info}/RECORD"]
    rows.append("../../../bin/torchrun")  # an entry-point script outside site-packages
    (site / dist_info / "RECORD").write_text("".join(f"{r},,\n" for r in rows))


def _run(src: Path, dst: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(dst)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_links_only_torch_family_and_pip_sees_it(tmp_path: Path) -> None:
    src = tmp_path / "export"
    src_site = src / "lib" / PY / "site-packages"
    _fake_dist(src_site, "torch", "2.14.1", {"torch/__init__.py": b"x = 1\n"})
    _fake_dist(src_site, "nvidia_cudnn_cu13", "9.1", {"nvidia/cudnn/lib/libcudnn.so.9": b"\0"})
    _fake_dist(src_site, "numpy", "2.3.5", {"numpy/__init__.py": b""})
    # A real venv as the target, so that pip itself says whether it sees the links.
    dst = tmp_path / "encoder"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dst)], check=True)
    dst_site = dst / "lib" / PY / "site-packages"

    out = _run(src, dst)

    assert "2 distributions" in out
    linked = dst_site / "torch" / "__init__.py"
    assert linked.stat().st_ino == (src_site / "torch" / "__init__.py").stat().st_ino
    assert (dst_site / "nvidia" / "cudnn" / "lib" / "libcudnn.so.9").exists()
    assert not (dst_site / "numpy").exists()  # not torch's: pip installs it itself
    assert not (dst / "bin" / "torchrun").exists()  # nothing outside site-packages
    code = "import importlib.metadata as m; print(m.version('torch'))"
    seen = subprocess.run(
        [str(dst / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    assert seen.stdout.strip() == "2.14.1"


def test_keeps_what_the_target_has_and_missing_source_is_a_no_op(tmp_path: Path) -> None:
    src_site = tmp_path / "a" / "lib" / PY / "site-packages"
    dst_site = tmp_path / "b" / "lib" / PY / "site-packages"
    _fake_dist(src_site, "torch", "2.14.1", {"torch/__init__.py": b"new\n"})
    _fake_dist(dst_site, "torch", "2.13.0", {"torch/__init__.py": b"own\n"})

    assert _run(tmp_path / "a", tmp_path / "b") == ""
    assert (dst_site / "torch" / "__init__.py").read_bytes() == b"own\n"
    assert _run(tmp_path / "missing", tmp_path / "b") == ""
