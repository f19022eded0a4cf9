"""A real Milvus standalone server for the test session, from the PyPI ``milvus`` package.

The package unpacks its embedded binary into the base dir, picks free ports upward from
Milvus' defaults, and starts ``milvus run standalone``. What this module adds:

- a retry, because two sessions on one machine can race for the same free port;
- an embedded-etcd config of its own (``ETCD_CONFIG_PATH``) with free client and peer
  ports: the package leaves etcd's peer port at 2380, so a second server on the machine
  (another session's, or a test's own next to the session's) died binding it;
- a graceful stop (SIGTERM, wait, then SIGKILL), since the package kills after one second;
- a watchdog process in its own session that kills the server if this Python process dies
  without running its teardown (SIGKILL, OOM), so no orphan keeps ports and 250 MB RSS.

Note: Milvus 2.3.5 binds its gRPC and metrics ports on all interfaces; ``*.ip`` settings
only change the address it advertises. Only etcd is loopback-only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import free_port

# The watchdog: exits when the server is gone; kills it when its parent is gone.
_WATCHDOG = """
import os, signal, sys, time
parent, child = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
while alive(child):
    if not alive(parent):
        os.kill(child, signal.SIGTERM)
        time.sleep(10)
        if alive(child):
            os.kill(child, signal.SIGKILL)
        break
    time.sleep(1)
"""


def start_with_own_etcd_ports(server: Any, run_dir: Path) -> None:
    """``server.start()`` with the embedded etcd on free client and peer ports; a restart
    in the same ``run_dir`` keeps them (etcd's data records its peer address)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "embed-etcd.yaml"
    if not config.exists():
        client, peer = free_port(), free_port()
        server.config.update(etcd_port=client)
        config.write_text(
            f"name: default\n"
            f"listen-client-urls: http://127.0.0.1:{client}\n"
            f"advertise-client-urls: http://127.0.0.1:{client}\n"
            f"listen-peer-urls: http://127.0.0.1:{peer}\n"
            f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
            f"initial-cluster: default=http://127.0.0.1:{peer}\n"
        )
    # The package copies os.environ for the server process when it starts it.
    before = os.environ.get("ETCD_CONFIG_PATH")
    os.environ["ETCD_CONFIG_PATH"] = str(config)
    try:
        server.start()
    finally:
        if before is None:
            os.environ.pop("ETCD_CONFIG_PATH", None)
        else:
            os.environ["ETCD_CONFIG_PATH"] = before


class StandaloneMilvus:
    """Start/stop one Milvus standalone process under ``base_dir``."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._server: Any = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self._server.listen_port}"

    @property
    def pid(self) -> int:
        return int(self._server.server_proc.pid)

    def start(self, attempts: int = 3) -> None:
        from milvus import MilvusServer  # the dev extra; imported lazily for lite-only runs

        last: Exception | None = None
        for attempt in range(attempts):
            # A fresh instance per attempt (not the module-level default_server): its port
            # choice is re-resolved and no state leaks between sessions in one process.
            server = MilvusServer()
            server.set_base_dir(str(self.base_dir / f"run{attempt}"))
            # Growing segments are otherwise searched through an interim IVF index probed
            # at 16 of 128 lists: recall@10 of fresh rows measured 0.52. Exact search on
            # unsealed data is what the brute-force comparisons need.
            server.config.set("queryNode.segcore.interimIndex.enableIndex", "false")
            try:
                start_with_own_etcd_ports(server, self.base_dir / f"run{attempt}")
            except (RuntimeError, TimeoutError) as exc:
                last = exc
                server.stop()
                time.sleep(1)
                continue
            self._server = server
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.pid)],
                start_new_session=True,
            )
            return
        raise RuntimeError(f"Milvus standalone did not start after {attempts} attempts: {last}")

    def stop(self, grace_s: float = 5.0) -> None:
        if self._server is None:
            return
        proc = self._server.server_proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._server.stop()  # closes its log files; the process is already gone
        self._server = None
        if self._watchdog is not None:
            # It exits by itself within a second of the server's death.
            try:
                self._watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None


class RestartableMilvus(StandaloneMilvus):
    """A standalone server whose process can be killed and started again in place."""

    def kill(self) -> None:
        proc = self._server.server_proc
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait(timeout=10)

    def kill9(self) -> None:
        """SIGKILL: no graceful stop, as a crash or an OOM kill."""
        proc = self._server.server_proc
        proc.kill()
        proc.wait(timeout=10)

    def start_again(self) -> None:
        """Start the killed server again on the same ports and data."""
        config = self._server.config
        config.update(proxy_port=self._server.listen_port)  # the same address for clients
        fixed = {int(config.configs["proxy_port"]), int(config.configs["etcd_port"])}
        # The package probes those ports with a bind without SO_REUSEADDR, which the old
        # server's connections in TIME_WAIT fail; Milvus itself (Go) binds with it.
        probe = config.try_bind_port
        config.try_bind_port = lambda p: socket.socket() if p in fixed else probe(p)
        start_with_own_etcd_ports(self._server, Path(config.base_data_dir))
