#!/usr/bin/env bash
# The run command of the README: sets everything up (Debian packages when missing, .venv/, pinned
# packages, the default score database built from music21's corpus) and runs the companion on its
# built-in default: it listens to the demo recording, identifies the piece and bar, then follows it.
# Usage: bash scripts/run.sh [AUDIO_OR_MIDI_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
input=${1:-assets/demo.ogg}
db=scores_db
companion=.venv/bin/companion
[[ -f $db/CURRENT ]] || $companion db build --db "$db" --default
echo "== identify: which piece, which bar? ($input)" >&2
result=$($companion identify --db "$db" "$input" --json)
echo "$result"
piece=$(printf '%s\n' "$result" | .venv/bin/python -c 'import json, sys
m = json.loads(sys.stdin.readline()).get("matches") or []
print(m[0]["source"] if m else "")')
if [[ -z $piece ]]; then
    echo "== not in the database: nothing to follow" >&2
    exit 0
fi
echo "== follow: the position in $piece, 10 times per second of audio" >&2
exec $companion follow --db "$db" "$input" --piece "$piece"
