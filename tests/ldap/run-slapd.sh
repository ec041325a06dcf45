#!/usr/bin/env bash
# Runs OpenLDAP's slapd in the foreground, serving LDAPS on 127.0.0.1:PORT and
# 127.0.0.2:PORT with WORKDIR/server.pem (see make-test-pki.sh). The tests start it as a
# child process and stop it with SIGTERM; `exec` keeps the child's pid slapd's own.
#
# Usage: run-slapd.sh WORKDIR PORT
set -euo pipefail
dir=$(cd "$1" && pwd)
port=$2
mkdir -p "$dir/db"
sed -e "s|@DIR@|$dir|g" "$(dirname "$0")/slapd.conf.in" > "$dir/slapd.conf"
# -d 0: no debug output, but stay in the foreground (slapd(8)).
exec /usr/sbin/slapd -d 0 -f "$dir/slapd.conf" -h "ldaps://127.0.0.1:$port/ ldaps://127.0.0.2:$port/"
