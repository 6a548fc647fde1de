#!/usr/bin/env bash
# The run command of the README: sets everything up (Debian packages when missing, .venv/, pinned
# packages, the default score database built from music21's corpus) and runs the companion on its
# built-in default, the demo recording: with a display it opens the window, which plays the recording,
# identifies the piece while listening and follows it in the score; without a display it prints the
# identification and then the followed position, 10 times per second of audio.
# Usage: bash scripts/run.sh [AUDIO_OR_MIDI_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
input=${1:-assets/demo.ogg}
db=scores_db
companion=.venv/bin/companion
# incremental: parses only what changed, so a no-op after the first run
$companion db build --db "$db" --default
if [[ -n ${DISPLAY:-}${WAYLAND_DISPLAY:-} ]]; then
    exec $companion gui --db "$db" --input "$input"
fi
echo "== no display: the terminal companion. Which piece, which bar? ($input)" >&2
$companion identify --db "$db" "$input"
echo "== following $input (identify while listening, then follow)" >&2
exec $companion follow --db "$db" "$input"
