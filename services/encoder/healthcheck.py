"""Container healthcheck: exit 0 only when clip-server's /dry_run reports ``"code": 0``.

jina's HTTP gateway answers /dry_run (HTTP 200) before the executor has loaded the model,
with an error in the body; only code 0 means an encode would succeed. Standard library
only, so it runs with the image's python and needs no curl.
"""

import json
import os
import sys
import urllib.request

port = os.environ.get("CLIP_HTTP_PORT", "51001")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/dry_run", timeout=4) as resp:
        code = json.loads(resp.read()).get("code")
except Exception as exc:  # any failure is "unhealthy"; the message lands in docker inspect
    print(f"unhealthy: {exc}")
    sys.exit(1)
print(f"dry_run code={code}")
sys.exit(0 if code == 0 else 1)
