#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is installed at /usr/bin/chromium, with NSS's
# certutil, for the browser tests of the email-validation approval page
# (tests/python/test_approval_browser.py) and of a distribution on the edge, whose browser
# profile trusts Carapace's root (tests/python/test_edge_browser.py).
# Playwright drives it through `executable_path`: Playwright's own browser downloads are not
# used (they need network access beyond the package registries).
#
# Debian/Ubuntu only (apt). Runs non-interactively.
set -euo pipefail

if [ -x /usr/bin/chromium ] && command -v certutil >/dev/null; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi

echo "--- installing chromium and certutil (browser tests)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium libnss3-tools >/dev/null
test -x /usr/bin/chromium
command -v certutil >/dev/null
