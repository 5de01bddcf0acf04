#!/usr/bin/env bash
# Installs what tests/web_browser.rs needs: Debian's chromium and CJK fonts (without them the
# Chinese text of the warning page renders as boxes in the screenshot), and certutil
# (libnss3-tools) for tests/encrypted.rs to make Chromium trust its test CA. Run as root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v certutil >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi 'noto.*cjk'; then
    echo "chromium and CJK fonts already installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk libnss3-tools >/dev/null
chromium --version
