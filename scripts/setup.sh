#!/usr/bin/env bash
# Set-up: the few host packages the suite can neither fetch into its cache nor build, then a virtualenv with
# the project. Usage: setup.sh PY VENV [test]   ("test": also what `make test` needs)
#
# Fetched by the suite itself, never installed on the host: containerd, runc, busybox, docker.io, kind,
# debootstrap, etcd, crun's source (Debian's archive over HTTP, signature- and hash-checked), and Kubernetes,
# etcd, containerd and CRI-O release downloads (checksum-checked). What the host must have, and why:
#   python venv   the project's virtualenv       (Debian/Ubuntu: python3-venv; Fedora's python3 has it)
#   util-linux    unshare, nsenter, mount: the private namespaces every runtime the suite starts lives in
#   gcc, make, pkg-config, libc6-dev   building crun once from Debian's source (cached): the default OCI runtime
#                 where the stock runc lacks idmapped mounts (Debian bookworm's 1.1.5), so that pods with
#                 hostUsers: false run (conformance/runtimes/ocidefault.py); on a fresh Debian 12 minbase these
#                 four add 36 packages (gcc-12, binutils, libc6-dev, ...). (Without them a run uses the stock
#                 runc and says why.)
# and for `make test`:
#   a Chromium    the browser test of matrix.html (Debian, Fedora: chromium; Ubuntu has it only as a snap:
#                 CHROMIUM=<binary>, or a google-chrome on PATH as on GitHub's runners, is used instead)
#   skopeo        reading the loopback registry in the registry test (the suite itself uses skopeo only for
#                 IMAGE_LOAD=skopeo, and by default for a CRI-O it starts when skopeo is installed)
# Packages come from the host's own package manager (apt-get or dnf), without recommends/weak dependencies.
set -euo pipefail
PY=${1:-python3}
VENV=${2:-.venv}
FOR=${3:-run}

if command -v apt-get >/dev/null; then manager=apt
elif command -v dnf >/dev/null; then manager=dnf
else manager=none
fi
# what:apt-name:dnf-name ("-": nothing to install there)
need=()
"$PY" -c 'import ensurepip, venv' 2>/dev/null || need+=("python venv:python3-venv:python3")
for tool in unshare nsenter mount; do
  command -v "$tool" >/dev/null || { need+=("$tool:util-linux:util-linux"); break; }
done
command -v gcc >/dev/null || need+=("gcc:gcc:gcc")
command -v make >/dev/null || need+=("make:make:make")
command -v pkg-config >/dev/null || need+=("pkg-config:pkgconf:pkgconf-pkg-config")
[ -e /usr/include/stdio.h ] || need+=("libc headers:libc6-dev:glibc-devel")
if [ "$FOR" = test ]; then
  browser=${CHROMIUM:-}
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    [ -n "$browser" ] || browser=$(command -v "$name" || true)
  done
  if [ -z "$browser" ]; then
    if grep -qs '^ID=ubuntu' /etc/os-release; then
      echo "setup: no Chromium here; Ubuntu ships it only as a snap: set CHROMIUM=<chromium or chrome binary> for the browser test" >&2
    else
      need+=("chromium:chromium:chromium")
    fi
  fi
  command -v skopeo >/dev/null || need+=("skopeo:skopeo:skopeo")
fi

if [ ${#need[@]} -gt 0 ]; then
  what=() packages=()
  for item in "${need[@]}"; do
    IFS=: read -r label apt_name dnf_name <<<"$item"
    what+=("$label")
    case $manager in apt) packages+=("$apt_name") ;; dnf) packages+=("$dnf_name") ;; esac
  done
  if [ "$manager" = none ]; then
    echo "setup: missing ${what[*]}; this host has neither apt-get nor dnf: install them with its package manager" >&2
    exit 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${what[*]}; run as root, or install: ${packages[*]}" >&2
    exit 2
  fi
  echo "setup: installing ${packages[*]} (for: ${what[*]})"
  if [ "$manager" = apt ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    dnf install -y -q --setopt=install_weak_deps=False "${packages[@]}" >/dev/null
  fi
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -e ".[dev]"
