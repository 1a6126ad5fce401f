#!/usr/bin/env bash
# Installs the system programs the bundled stack's tests need, when missing: prometheus and
# promtool (Debian's prometheus) and amtool (prometheus-alertmanager). Needs root (apt-get).
set -euo pipefail
missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v go >/dev/null || { echo "install-deps.sh: Go is needed to build the e2e programs" >&2; exit 1; }
