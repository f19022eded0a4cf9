#!/usr/bin/env bash
# Print the Debian mirror this host's apt uses (first main-archive URI), for debootstrap and
# the trixie packages: the test uses whatever mirror the machine is configured with.
set -euo pipefail
uri=""
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] || continue
  uri="$(awk '/^URIs:/ {print $2; exit}' "$f")"
  [[ -n "$uri" && "$uri" != *security* ]] && break
  uri=""
done
if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
  uri="$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
fi
[[ -n "$uri" ]] || { echo "debian-mirror: no Debian mirror in the apt sources" >&2; exit 1; }
echo "${uri%/}"
