#!/usr/bin/env bash
# Create bench/.venv-pymatchmaker with pymatchmaker 0.3.0 (it pins numpy<2, so it stays out of the
# main venv). Used by companion.bench.follow_bench through companion/bench/pymatchmaker_runner.py.
# Usage: bash companion/bench/setup_pymatchmaker.sh   (from the repository root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/bench/.venv-pymatchmaker"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "pymatchmaker==0.3.0" "soundfile"
# partitura tries to download a soundfont at import when pyfluidsynth is importable (and crashes
# offline); the runner does not need it.
"$VENV/bin/python" -m pip uninstall --quiet -y pyfluidsynth 2>/dev/null || true
"$VENV/bin/python" -c "import matchmaker; print('pymatchmaker ok')"
