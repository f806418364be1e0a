#!/usr/bin/env bash
# Set-up for a fresh Debian/Ubuntu machine, as root: system packages the suite uses, then a
# virtualenv with the project. `setup.sh PY VENV test` adds what only the project's tests use (chromium, for
# the matrix page in a real browser); `make test` asks for it, `make conformance` does not. Runtime binaries
# (containerd) are fetched by the suite itself over HTTP from Debian's archive (no apt or dpkg needed for that).
set -euo pipefail
PY=${1:-python3}
VENV=${2:-.venv}
FOR=${3:-}
need=()
command -v busybox >/dev/null || [ -x /bin/busybox ] || need+=(busybox-static)
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
command -v skopeo >/dev/null || need+=(skopeo)
command -v unshare >/dev/null || need+=(util-linux)
if [ "$FOR" = test ]; then
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root or install them" >&2; exit 2
  fi
  echo "setup: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -e ".[dev]"
