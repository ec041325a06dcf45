#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (aws-sdk-rust against the real binary),
# then the Python suite (boto3 and the AWS CLI against the real binary).
# Installs what a fresh machine lacks: a Python venv with boto3/awscli/pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carapace/target}"
VENV="${CARAPACE_VENV:-$HOME/.cache/carapace/venv}"

# (Re)install when the requirements change: the venv remembers the file it was built from.
if ! cmp -s tests/python/requirements.txt "$VENV/requirements.txt"; then
  echo "--- setting up Python venv in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$VENV/requirements.txt"
fi

# Real OpenLDAP for the Directory Service LDAPS tests (installs slapd when absent).
bash tests/ldap/ensure-slapd.sh
bash tests/browser/ensure-chromium.sh
bash tests/edge/ensure-nginx.sh
# PostgreSQL for the multi-node store tests (CARAPACE_TEST_POSTGRES_URL, default the local
# server): start the machine's cluster if it is installed but not running.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "--- starting PostgreSQL"
  (service postgresql start || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -1)" main start) >/dev/null 2>&1 || true
fi

echo "--- cargo test"
cargo build --quiet --bins
cargo test --workspace --quiet

echo "--- pytest (boto3, AWS CLI)"
export CARAPACE_BIN="$CARGO_TARGET_DIR/debug/carapace"
export PATH="$VENV/bin:$PATH"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/python
