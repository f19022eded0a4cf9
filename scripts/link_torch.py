"""Seed a new venv with hard links to another venv's PyTorch (and its CUDA wheels).

The export venv (open_clip) and the encoder venv (clip-server) both pin torch 2.14.1 with
its nvidia-* wheels: about 5.5 GB each, twice the same files. A CI machine ran out of disk
building the second copy. Before pip runs, the build scripts call

    python3 scripts/link_torch.py OTHER_VENV NEW_VENV

which hard-links every file of OTHER_VENV's torch-family distributions (listed in their
RECORD files) into NEW_VENV's site-packages, so pip finds them installed and adds only what
is missing. Nothing changes when a pin differs: pip then uninstalls the linked copy (which
unlinks NEW_VENV's names only; OTHER_VENV keeps its files) and installs its own. Files are
never written through a link, so the two venvs cannot change each other. Where a hard link
is impossible (another file system), nothing is linked and pip installs as before.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from pathlib import Path

# torch's own wheels and the CUDA runtime wheels it depends on: the multi-GB part.
_SHARED = re.compile(r"^(torch|torchvision|triton|nvidia[-_].+|cuda[-_].+)$", re.IGNORECASE)


def _site_packages(venv: Path) -> Path | None:
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    return found[0] if len(found) == 1 else None


def _dist_name(dist_info: Path) -> str:
    return dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]


def _record_paths(dist_info: Path) -> list[str]:
    with (dist_info / "RECORD").open(newline="", encoding="utf-8") as f:
        return [row[0] for row in csv.reader(f) if row]


def link(src_venv: Path, dst_venv: Path) -> tuple[int, int]:
    """Link the shared distributions; (distributions, files) linked."""
    src, dst = _site_packages(src_venv), _site_packages(dst_venv)
    if src is None or dst is None or src.name != dst.name or src.parent.name != dst.parent.name:
        return 0, 0
    have = {_dist_name(d).lower().replace("_", "-") for d in dst.glob("*.dist-info")}
    dists = files = 0
    for dist_info in sorted(src.glob("*.dist-info")):
        name = _dist_name(dist_info)
        if not _SHARED.match(name) or name.lower().replace("_", "-") in have:
            continue
        if not (dist_info / "RECORD").is_file():
            continue
        paths = [p for p in _record_paths(dist_info) if not p.startswith("..")]
        for rel in paths:
            source = src / rel
            if not source.is_file():
                continue
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()
            try:
                os.link(source, target)
            except OSError as exc:  # another file system: leave it all to pip
                print(f"link_torch: cannot hard-link ({exc}); pip installs instead")
                return dists, files
            files += 1
        dists += 1
    return dists, files


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: link_torch.py OTHER_VENV NEW_VENV", file=sys.stderr)
        return 2
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    if not src.is_dir():
        return 0
    dists, files = link(src, dst)
    if dists:
        print(f"link_torch: {dists} distributions ({files} files) hard-linked from {src}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
