#!/usr/bin/env bash
# Runs moto's own ACM test suite (tests/test_acm/test_acm.py of getmoto/moto) against
# `carapace serve --dev`, in moto's server mode. Not part of CI or scripts/test.sh: it
# needs a moto checkout, and several of moto's tests assert moto-only behaviour (the list,
# with reasons, is in docs/behaviour.md, "ACM fidelity").
#
#   scripts/moto-acm-suite.sh /path/to/moto [extra pytest arguments]
#
# Fetches nothing itself beyond what pip installs into the venv: moto from the checkout
# (with its `server` extra), pytest and freezegun. Environment:
#   CARAPACE_BIN      the binary (default: $CARGO_TARGET_DIR or target, debug/carapace)
#   MOTO_VENV         the venv to create or reuse (default: $HOME/.cache/carapace/moto-venv)
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1/tests/test_acm/test_acm.py" ]; then
  echo "usage: $0 /path/to/moto-checkout [pytest args...]" >&2
  exit 2
fi
MOTO="$(cd "$1" && pwd)"
shift
cd "$(dirname "$0")/.."
BIN="${CARAPACE_BIN:-${CARGO_TARGET_DIR:-target}/debug/carapace}"
VENV="${MOTO_VENV:-$HOME/.cache/carapace/moto-venv}"
[ -x "$BIN" ] || { echo "no carapace binary at $BIN (cargo build -p carapace first)" >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "--- creating $VENV (moto from $MOTO)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO[server]" pytest freezegun
fi

# A fresh server and data directory per run: moto's server mode resets state through
# /moto-api/reset, which Carapace does not offer, so counts would carry over between runs.
DATA="$(mktemp -d -t carapace-moto-XXXXXX)"
LOG="$DATA/server.log"
RUST_LOG="${RUST_LOG:-warn}" \
  CARAPACE_ACM_APPROVAL_LISTEN=127.0.0.1:0 CARAPACE_EDGE_HTTPS_LISTEN=127.0.0.1:0 CARAPACE_EDGE_HTTP_LISTEN=127.0.0.1:0 \
  "$BIN" serve --dev --listen 127.0.0.1:0 --data-dir "$DATA/data" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DATA"' EXIT

ENDPOINT=""
for _ in $(seq 100); do
  ENDPOINT="$(sed -n 's/.*carapace listening on \(http:\/\/[^ ]*\).*/\1/p' "$LOG" | head -1)"
  [ -n "$ENDPOINT" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ENDPOINT" ] || { echo "carapace did not start:" >&2; cat "$LOG" >&2; exit 1; }
echo "--- moto's tests/test_acm/test_acm.py against $ENDPOINT"

# moto's mock_aws sets its own fake credentials (access key FOOBARKEY): in --dev that is
# account 000000000000, not moto's 123456789012.
cd "$MOTO"
TEST_SERVER_MODE=true TEST_SERVER_MODE_ENDPOINT="$ENDPOINT" \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -q -rfEs tests/test_acm/test_acm.py "$@"
