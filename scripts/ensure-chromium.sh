#!/usr/bin/env bash
# Make sure Debian's chromium is installed, for the tests that open pages in a real browser
# (tests/browser.py: optuna-dashboard's pages and report.html, headless).
#
#   scripts/ensure-chromium.sh
#
# Does nothing when /usr/bin/chromium (or $LGT_CHROMIUM) is there; otherwise installs the
# `chromium` package with apt-get, quietly, as root or through sudo. Safe to run every time.
set -euo pipefail

CHROMIUM="${LGT_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi

echo "ensure-chromium: $CHROMIUM not found; installing Debian's chromium package" >&2
SUDO=""
[[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [[ ! -x "$CHROMIUM" ]]; then
    echo "ensure-chromium: the chromium package installed, but $CHROMIUM is still missing" >&2
    exit 1
fi
"$CHROMIUM" --version >&2
