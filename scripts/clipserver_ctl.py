#!/usr/bin/env python3
"""Start, stop and inspect a clip-server on loopback, by pid (standard library only).

    scripts/clipserver_ctl.py start --model-path services/encoder/models/shapes \\
        --http-port 51001 --grpc-port 51000 --pid-file data/clip-server.pid
    scripts/clipserver_ctl.py status --pid-file data/clip-server.pid
    scripts/clipserver_ctl.py stop --pid-file data/clip-server.pid

``start`` runs ``python -m clip_server <flow>`` from the encoder venv (``.venv-encoder``)
with one of ``services/encoder/flow-*.yml``, waits until ``GET /dry_run`` reports
``"code": 0`` (the HTTP gateway answers earlier, with an error body, while the executor
loads), then records the main pid and its children (jina's gateway and executor
processes) in a JSON pid file. ``stop`` sends SIGINT to the main pid (jina shuts its
children down in ~2 s), then SIGTERM/SIGKILL to whatever recorded pid is still alive.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOWS = {
    "onnx": ROOT / "services/encoder/flow-onnx.yml",
    "torch": ROOT / "services/encoder/flow-torch.yml",
}
DEFAULT_VENV = ROOT / ".venv-encoder"


def dry_run_ok(http_port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """(ready, detail): ready only when ``/dry_run`` answers JSON with ``code == 0``."""
    url = f"http://127.0.0.1:{http_port}/dry_run"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no answer: {exc}"
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return False, f"not JSON: {body[:200]}"
    return code == 0, body[:300]


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid``, read from /proc (children before grandchildren)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def read_pid_file(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # Loopback only, no phoning home, no update check, no survey prompt.
            "JINA_DEFAULT_HOST": "127.0.0.1",
            "NO_VERSION_CHECK": "1",
            "JINA_OPTOUT_TELEMETRY": "1",
            "JINA_HIDE_SURVEY": "1",
            "CLIP_MODEL_NAME": args.model_name,
            "CLIP_MODEL_PATH": str(Path(args.model_path).resolve()) if args.model_path else "",
            "CLIP_MINIBATCH_SIZE": str(args.minibatch_size),
            "CLIP_NUM_THREADS": str(args.threads or os.cpu_count() or 1),
            "CLIP_GRPC_PORT": str(args.grpc_port),
            "CLIP_HTTP_PORT": str(args.http_port),
        }
    )
    return env


def start(args: argparse.Namespace) -> int:
    pid_file = Path(args.pid_file)
    existing = read_pid_file(pid_file)
    if existing and alive(int(str(existing.get("main", 0)))):
        print(f"already running: pid {existing['main']} ({pid_file})", file=sys.stderr)
        return 1
    for port in (args.grpc_port, args.http_port):
        if not port_free(port):
            print(f"port {port} on 127.0.0.1 is in use", file=sys.stderr)
            return 1
    python = Path(args.venv) / "bin" / "python"
    if not python.exists():
        print(f"{python} missing: build it with scripts/build_encoder_venv.sh", file=sys.stderr)
        return 1
    flow = FLOWS.get(args.flow, Path(args.flow))
    log_path = Path(args.log_file or pid_file.with_suffix(".log"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(python), "-m", "clip_server", str(flow)],
            env=server_env(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(log_path.parent),
            # Own session: a Ctrl-C in the caller's terminal does not reach the server.
            start_new_session=True,
        )
    record = {
        "main": proc.pid,
        "children": [],
        "http_port": args.http_port,
        "grpc_port": args.grpc_port,
        "log": str(log_path),
    }
    pid_file.write_text(json.dumps(record))
    deadline = time.monotonic() + args.timeout
    detail = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"clip-server exited with {proc.returncode}; log: {log_path}", file=sys.stderr)
            print(tail(log_path), file=sys.stderr)
            pid_file.unlink(missing_ok=True)
            return 1
        ok, detail = dry_run_ok(args.http_port)
        if ok:
            record["children"] = descendants(proc.pid)
            pid_file.write_text(json.dumps(record))
            print(json.dumps(record))
            return 0
        time.sleep(0.5)
    print(f"not ready after {args.timeout}s (last /dry_run: {detail}); stopping", file=sys.stderr)
    print(tail(log_path), file=sys.stderr)
    stop_pids(proc.pid, descendants(proc.pid))
    pid_file.unlink(missing_ok=True)
    return 1


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_pids(main: int, children: list[int], grace: float = 10.0) -> list[int]:
    """SIGINT the main pid, then SIGTERM and SIGKILL whatever is left; returns pids killed hard."""
    pids = [main, *children]
    if alive(main):
        pids += [p for p in descendants(main) if p not in pids]
        os.kill(main, signal.SIGINT)
    forced: list[int] = []
    for sig, wait in ((None, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            for pid in pids:
                if alive(pid):
                    forced.append(pid)
                    os.kill(pid, sig)
        end = time.monotonic() + wait
        while time.monotonic() < end and any(alive(p) for p in pids):
            time.sleep(0.1)
        if not any(alive(p) for p in pids):
            break
    return sorted(set(forced))


def stop(args: argparse.Namespace) -> int:
    pid_file = Path(args.pid_file)
    record = read_pid_file(pid_file)
    if record is None:
        print(f"no pid file at {pid_file}: nothing to stop", file=sys.stderr)
        return 0
    main = int(str(record["main"]))
    children = [int(p) for p in record.get("children", []) or []]  # type: ignore[union-attr]
    forced = stop_pids(main, children, grace=args.grace)
    pid_file.unlink(missing_ok=True)
    print(json.dumps({"stopped": main, "forced": forced}))
    return 0


def status(args: argparse.Namespace) -> int:
    record = read_pid_file(Path(args.pid_file))
    if record is None:
        print("stopped")
        return 3
    main = int(str(record["main"]))
    ok, detail = dry_run_ok(int(str(record["http_port"])))
    state = "ready" if ok else ("starting-or-broken" if alive(main) else "dead")
    print(json.dumps({**record, "alive": alive(main), "state": state, "dry_run": detail}))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_start = sub.add_parser("start", help="start and wait for readiness")
    p_start.add_argument("--model-path", default="", help="folder with textual/visual.onnx")
    p_start.add_argument("--model-name", default="ViT-B-32::openai")
    p_start.add_argument("--flow", default="onnx", help="onnx | torch | path to a flow YAML")
    p_start.add_argument("--grpc-port", type=int, default=51000)
    p_start.add_argument("--http-port", type=int, default=51001)
    p_start.add_argument("--threads", type=int, default=0, help="0 = one per core")
    p_start.add_argument("--minibatch-size", type=int, default=32)
    p_start.add_argument("--venv", default=str(DEFAULT_VENV))
    p_start.add_argument("--log-file", default="")
    p_start.add_argument("--timeout", type=float, default=180.0, help="readiness timeout (s)")
    for p in (p_start, sub.add_parser("stop"), sub.add_parser("status")):
        p.add_argument("--pid-file", default=str(ROOT / "data" / "clip-server.pid"))
    sub.choices["stop"].add_argument("--grace", type=float, default=10.0)
    args = parser.parse_args(argv)
    return {"start": start, "stop": stop, "status": status}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
