#!/usr/bin/env bash
# Idempotent set-up shared by scripts/run.sh and scripts/test.sh:
#   1. Debian packages the companion uses at run time (and, with --test, for the tests), when missing;
#   2. .venv/ in the repository root with the pinned Python packages (requirements.lock) and companion itself.
# Usage: bash scripts/bootstrap.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
# libportaudio2: sounddevice; libsndfile1: soundfile; fluidsynth + two soundfonts: rendering MIDI
# to audio (demo, tests, benchmarks); xcb libs: Qt under X; pulseaudio: the live-capture test.
pkgs=(libportaudio2 libsndfile1 fluidsynth timgm6mb-soundfont fluidr3mono-gm-soundfont
      libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libegl1 libgl1 libxkbcommon0 libfontconfig1)
if (( want_test )); then
    pkgs+=(xvfb pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python virtual environment ----------------------------------------------------------------
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
stamp=.venv/.companion-installed
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)-$want_test"
if [[ ! -f $stamp ]] || ! grep -qx -- "$want" "$stamp"; then
    log "installing pinned Python packages into .venv (first run takes about a minute)"
    .venv/bin/python -m pip install -q --upgrade "pip==25.3" >&2
    extra=""
    (( want_test )) && extra="[test]"
    .venv/bin/python -m pip install -q -c requirements.lock -e ".${extra}" >&2
    echo "$want" > "$stamp"
fi
