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
"$VENV/bin/python" -m pip install --quiet "pymatchmaker==0.3.0" "soundfile" "pyfluidsynth==${PYFLUIDSYNTH_VERSION:-1.3.4}"
# pymatchmaker's arzt/dixon synthesise a reference from the score with partitura + pyfluidsynth, and
# partitura downloads MuseScore_General.sf3 at import when it is missing (which crashes offline). Put a
# local soundfont in its place first: FluidR3_GM (Debian fluid-soundfont-gm), which is NOT one of the
# soundfonts the benchmark renders its test audio with (timgm6mb, fluidr3mono).
REF_SF="${PMM_REFERENCE_SOUNDFONT:-/usr/share/sounds/sf2/FluidR3_GM.sf2}"
if [ ! -f "$REF_SF" ]; then
    echo "setup_pymatchmaker: $REF_SF is missing (Debian: apt-get install fluid-soundfont-gm," \
         "or set PMM_REFERENCE_SOUNDFONT to another .sf2); partitura would try to download one" >&2
    exit 1
fi
PT_ASSETS="$("$VENV/bin/python" -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('partitura').origin), 'assets'))")"
mkdir -p "$PT_ASSETS"
ln -sf "$REF_SF" "$PT_ASSETS/MuseScore_General.sf3"
"$VENV/bin/python" -c "import matchmaker; print('pymatchmaker ok')"
