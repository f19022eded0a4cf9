#!/usr/bin/env bash
# Install what `make compose-test` needs on a Debian bookworm host, as root, idempotently:
#   - Debian's docker.io (dockerd 20.10) and debootstrap, from the host's own apt sources;
#   - Compose v2 and buildx from Debian trixie (bookworm's docker-compose is v1 and cannot
#     read `depends_on.required` or `env_file: [{path, required}]`). The trixie packages
#     install on bookworm; they are fetched with a separate apt state so that the system's
#     sources and lists stay untouched.
# The mirror is read from the host's apt configuration: nothing here names a host.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

have_compose_v2() { docker compose version --short 2>/dev/null | grep -qE '^v?2\.'; }
have_buildx() { docker buildx version >/dev/null 2>&1; }
if have_compose_v2 && have_buildx; then
  exit 0
fi

mirror="$(bash "$(dirname "$0")/debian-mirror.sh")"
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
  >"$state/sources.list"
opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=-"
      -o "Dir::State::Lists=$state/lists" -o "Dir::Cache::Archives=$state/archives")
apt-get "${opts[@]}" update -qq
(cd "$state" && apt-get "${opts[@]}" download docker-compose docker-buildx >/dev/null)
# --force-depends: they ask for a newer libc6 symbol version than they use (static Go).
dpkg --force-depends -i "$state"/docker-compose_*.deb "$state"/docker-buildx_*.deb >/dev/null
have_compose_v2 || { echo "install-engine: docker compose v2 still missing" >&2; exit 1; }
