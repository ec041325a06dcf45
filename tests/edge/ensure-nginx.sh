#!/usr/bin/env bash
# Makes sure Debian's nginx is installed: the edge's hostile tests (crates/edge/tests/hostile.rs)
# put the edge in front of a real nginx origin, and scripts/bench-edge.sh measures against it.
# Debian/Ubuntu only (apt). Runs non-interactively.
set -euo pipefail

if [ -x /usr/sbin/nginx ] || [ -x /usr/bin/nginx ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi

echo "--- installing nginx-light (edge tests against a real origin)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq nginx-light >/dev/null
# The package starts a system nginx on port 80; the tests run their own.
$SUDO service nginx stop >/dev/null 2>&1 || true
test -x /usr/sbin/nginx
