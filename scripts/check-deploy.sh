#!/usr/bin/env bash
# Checks deploy/scf-node.service as systemd would read it, without systemd running (CI runs in
# containers where it is not PID 1): `systemd-analyze verify` must have nothing to say about it,
# and `systemd-analyze security --offline` must rate its exposure at most 2.0 (of 10).
#
# verify exits 0 on most mistakes (an unknown key, a value it cannot parse: it ignores the line
# and warns), so any output at all is a failure here. It also insists that ExecStart's binary
# exists: the check runs on a copy whose ExecStart names a stand-in at the same place in a
# temporary directory, and nothing else of the unit changes.
set -euo pipefail
cd "$(dirname "$0")/.."
unit=deploy/scf-node.service
binary=/usr/local/bin/scf-node
if ! command -v systemd-analyze >/dev/null; then
  echo "check-deploy: systemd-analyze is missing: install Debian's systemd package" >&2
  echo "              (.ci/run does, through scripts/setup.sh)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$work/scf-node"
chmod +x "$work/scf-node"
grep -q "^ExecStart=$binary " "$unit" || {
  echo "check-deploy: $unit has no ExecStart=$binary …; update this check with it" >&2
  exit 1
}
sed "s|^ExecStart=$binary |ExecStart=$work/scf-node |" "$unit" >"$work/scf-node.service"

said=$(systemd-analyze verify --man=no --generators=no "$work/scf-node.service" 2>&1) || {
  echo "check-deploy: systemd-analyze verify refuses $unit:" >&2
  echo "$said" >&2
  exit 1
}
if [[ -n "$said" ]]; then
  echo "check-deploy: systemd-analyze verify warns about $unit (systemd would ignore those lines):" >&2
  echo "$said" >&2
  exit 1
fi
if ! report=$(systemd-analyze security --offline=true --threshold=20 --man=no "$work/scf-node.service" 2>&1); then
  echo "check-deploy: $unit is exposed beyond 2.0 (systemd-analyze security):" >&2
  echo "$report" >&2
  exit 1
fi
echo "check-deploy: $unit verifies cleanly; $(grep -o 'Overall exposure level.*' <<<"$report")"
