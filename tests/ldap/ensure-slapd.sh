#!/usr/bin/env bash
# Makes sure OpenLDAP's slapd (with the ldap-utils client tools) and the openssl CLI are
# installed, for the Directory Service tests: crates/carapace/tests/ds_*.rs and
# tests/python/test_ds*.py make a test PKI with make-test-pki.sh (openssl) and start a
# real slapd on a loopback port with run-slapd.sh.
#
# Debian/Ubuntu only (apt). Runs non-interactively; slapd's package scripts would
# otherwise ask for an admin password. The system slapd service is not needed: the tests
# start their own slapd with a generated config, so it is stopped if the package started it.
set -euo pipefail

if [ -x /usr/sbin/slapd ] && command -v openssl >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi

echo "--- installing slapd, ldap-utils and openssl (Directory Service LDAPS tests)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends slapd ldap-utils openssl >/dev/null
# The package may start a system-wide slapd on port 389; the tests do not use it.
if command -v service >/dev/null 2>&1; then
  $SUDO service slapd stop >/dev/null 2>&1 || true
fi
test -x /usr/sbin/slapd
