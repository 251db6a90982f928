#!/usr/bin/env bash
# Set-up shared by the README's two commands: the virtual environment, Python packages,
# front-end assets and (with --dev) the test tools and a browser. Safe to run again: each step
# is skipped when what it makes is already current.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=no
[ "${1:-}" = "--dev" ] && dev=yes

say() { printf '[setup] %s\n' "$*" >&2; }

python_bin=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    python_bin=$candidate; break
  fi
done
if [ -z "$python_bin" ]; then
  say "Python 3.11 is required (python3.11 or python3 must be version 3.11)."; exit 1
fi

# Debian packages: install what is missing when we are root, otherwise say what to install.
need_debs=()
"$python_bin" -c 'import ensurepip, venv' 2>/dev/null || need_debs+=(python3.11-venv)
command -v npm >/dev/null 2>&1 || need_debs+=(nodejs npm)
command -v espeak-ng >/dev/null 2>&1 || need_debs+=(espeak-ng)  # TTS for variable prompts
if [ "$dev" = yes ]; then
  command -v chromium >/dev/null 2>&1 || need_debs+=(chromium)
  # The browser tests' screenshots (kept in docs/) show Chinese: without a CJK font they
  # would be boxes.
  fc-list :lang=zh 2>/dev/null | grep -q . || need_debs+=(fonts-wqy-microhei)
fi
if [ ${#need_debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${need_debs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
  else
    say "missing Debian packages: ${need_debs[*]}"
    say "run: sudo apt-get install -y ${need_debs[*]}   (then run this command again)"
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv"
  "$python_bin" -m venv .venv
fi

reqs=requirements.txt
[ "$dev" = yes ] && reqs=requirements-dev.txt
stamp=.venv/.installed-$(cat requirements.txt "$reqs" | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
  say "installing Python packages from $reqs (first time: a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$reqs"
  touch "$stamp"
fi

# Front-end assets come from npm packages installed here and are served locally: operators
# run the console on closed networks, so no page may load anything from a CDN.
lock_stamp=webui/node_modules/.installed-$(sha256sum webui/package-lock.json | cut -c1-16)
if [ ! -e "$lock_stamp" ]; then
  say "installing front-end packages (npm ci)"
  (cd webui && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$lock_stamp"
fi
.venv/bin/python -m webui.assets
