#!/usr/bin/env bash
# Runs moto's own test suites for ACM (tests/test_acm/test_acm.py), AWS Private CA
# (tests/test_acmpca/test_acmpca.py) or Directory Service (tests/test_ds/) of getmoto/moto against `carapace serve --dev`, in moto's server mode.
# Not part of CI or scripts/test.sh: it needs a moto checkout, and some of moto's tests
# assert moto-only behaviour (the remaining failures, with reasons, are in
# docs/behaviour.md, "moto's suites").
#
#   scripts/moto-suite.sh /path/to/moto acm|pca|ds [extra pytest arguments]
#
# e.g. scripts/moto-suite.sh ~/src/moto ds -k describe
#
# moto's tests point every client at one endpoint and POST /moto-api/reset before each
# test; the DS tests also create VPCs and subnets through EC2. So the tests talk to
# scripts/moto_router.py on loopback, which sends acm, ds and lightsail requests (by the
# SigV4 credential scope's service) to Carapace and everything else to a `moto_server`,
# and on /moto-api/reset restarts Carapace on a fresh data directory and resets moto.
# Carapace runs with CARAPACE_DS_STAGE_DELAY_MS=0 (directories are Active at once, as in
# moto) and its approval and edge listeners on 127.0.0.1:0.
#
# Fetches nothing itself beyond what pip installs into the venv: moto from the checkout
# (with its `server` extra), pytest and freezegun. Environment:
#   CARAPACE_BIN      the binary (default: $CARGO_TARGET_DIR or target, debug/carapace)
#   MOTO_VENV         the venv to create or reuse (default: $HOME/.cache/carapace/moto-venv)
#   MOTO_SUITE_KEEP   set to keep the servers' data and logs (the path is printed)
set -euo pipefail

usage() { echo "usage: $0 /path/to/moto-checkout acm|pca|ds [pytest args...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
case "$2" in
  acm) TESTS=tests/test_acm/test_acm.py ;;
  pca) TESTS=tests/test_acmpca/test_acmpca.py ;;
  ds) TESTS=tests/test_ds/ ;;
  *) usage ;;
esac
[ -e "$1/$TESTS" ] || { echo "$1 is not a moto checkout (no $TESTS)" >&2; exit 2; }
MOTO="$(cd "$1" && pwd)"
shift 2
cd "$(dirname "$0")/.."
ROUTER="$PWD/scripts/moto_router.py"
BIN="$(realpath "${CARAPACE_BIN:-${CARGO_TARGET_DIR:-target}/debug/carapace}" 2>/dev/null || true)"
VENV="${MOTO_VENV:-$HOME/.cache/carapace/moto-venv}"
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "no carapace binary (cargo build -p carapace first)" >&2; exit 2; }

if [ ! -x "$VENV/bin/moto_server" ]; then
  echo "--- creating $VENV (moto from $MOTO)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO[server]" pytest freezegun
fi

WORK="$(mktemp -d -t carapace-moto-XXXXXX)"
# The router and the servers it starts get their own process group, stopped as one.
setsid "$VENV/bin/python" "$ROUTER" --carapace "$BIN" --moto-server "$VENV/bin/moto_server" \
  --work "$WORK" >"$WORK/router.log" 2>&1 &
ROUTER_PID=$!
cleanup() {
  kill -TERM -- "-$ROUTER_PID" 2>/dev/null || true
  wait "$ROUTER_PID" 2>/dev/null || true
  if [ -n "${MOTO_SUITE_KEEP:-}" ]; then echo "--- data and logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ENDPOINT=""
for _ in $(seq 1200); do
  ENDPOINT="$(sed -n 's/^moto-router listening on \(http:\/\/[^ ]*\).*/\1/p' "$WORK/router.log" | head -1)"
  [ -n "$ENDPOINT" ] && break
  kill -0 "$ROUTER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ENDPOINT" ] || { echo "the router did not start:" >&2; cat "$WORK/router.log" >&2; exit 1; }
echo "--- moto's $TESTS against $ENDPOINT (carapace $BIN; moto_server for other services)"

# moto's mock_aws sets its own fake credentials (access key FOOBARKEY): in --dev that is
# account 000000000000, not moto's 123456789012.
cd "$MOTO"
TEST_SERVER_MODE=true TEST_SERVER_MODE_ENDPOINT="$ENDPOINT" \
  "$VENV/bin/python" -m pytest -p no:cacheprovider -q -rfEs "$TESTS" "$@"
