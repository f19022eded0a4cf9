"""Container healthcheck for the gateway: exit 0 only when ``/readyz`` answers 200.

Reads the port (and host) the gateway was told to bind from the same environment variables
``clipsearch serve`` reads, so a changed ``CLIPSEARCH_PORT`` is probed where it listens.
Standard library only.
"""

import os
import sys
import urllib.error
import urllib.request

host = os.environ.get("CLIPSEARCH_HOST", "127.0.0.1")
if host in ("", "0.0.0.0", "::", "[::]"):  # all interfaces: loopback answers too
    host = "127.0.0.1"
if ":" in host and not host.startswith("["):
    host = f"[{host}]"
port = os.environ.get("CLIPSEARCH_PORT", "8000")
url = f"http://{host}:{port}/readyz"
try:
    with urllib.request.urlopen(url, timeout=4) as resp:
        status = resp.status
except urllib.error.HTTPError as exc:  # 503 names the dependency that is not ready
    print(f"{url}: {exc.code} {exc.read()[:300]!r}")
    sys.exit(1)
except Exception as exc:  # refused, timeout: not serving yet
    print(f"{url}: {exc}")
    sys.exit(1)
print(f"{url}: {status}")
sys.exit(0 if status == 200 else 1)
