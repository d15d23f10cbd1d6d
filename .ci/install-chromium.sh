#!/usr/bin/env bash
# Install Debian's chromium + chromium-driver for the browser checks of tests/analysis
# (the `slow` MLflow-UI and report tests drive /usr/bin/chromium through Playwright; we never
# run `playwright install`). Idempotent: does nothing when chromium is already there; installs
# with apt-get only when running as root on a Debian/Ubuntu system; otherwise says why not and
# exits 0, so the browser tests skip with a clear reason instead of failing the build.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: chromium already installed at $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install-chromium: chromium missing and not root: skipped (browser tests will skip; run 'sudo apt-get install chromium chromium-driver')"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: chromium missing and no apt-get on this system: skipped (browser tests will skip)"
  exit 0
fi
echo "install-chromium: installing chromium and chromium-driver with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends chromium chromium-driver >/tmp/install-chromium.log 2>&1; then
  apt-get update -q >>/tmp/install-chromium.log 2>&1 || true
  if ! apt-get install -y -q --no-install-recommends chromium chromium-driver >>/tmp/install-chromium.log 2>&1; then
    echo "install-chromium: apt-get failed (log: /tmp/install-chromium.log): browser tests will skip"
    tail -n 5 /tmp/install-chromium.log
    exit 0
  fi
fi
echo "install-chromium: installed $(chromium --version 2>/dev/null || echo chromium)"
