#!/usr/bin/env bash
# The browser the web app's tests drive (tests/web): Debian's chromium, from the host's own
# apt sources. Playwright's own browser downloads are never used (no internet here but the
# package registries). Idempotent: nothing to do when the binary is there. Without root it
# only says what is missing; the browser tests then fail with the same message.
set -euo pipefail
CHROMIUM=${CLIPSEARCH_TEST_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install_chromium: $CHROMIUM is missing; as root: apt-get install -y chromium" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install_chromium: no apt-get to install chromium with" >&2
  exit 0
fi
echo "install_chromium: installing Debian's chromium"
# Wait for another apt run (a second `make test`, compose-test's installs) instead of failing.
lock=(-o DPkg::Lock::Timeout=600)
apt-get "${lock[@]}" update -qq
DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq chromium >/dev/null
