"""Regenerate BENCHMARKS.md from bench/summary.md and the per-issue result files in bench/results/.

Each result file is written by its benchmark (``--out``) or by hand from the benchmark's printed
tables, with the exact command that made it. Run:  .venv/bin/python bench/collect.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["db", "identify", "transcription", "tracking", "engine", "midi", "gui"]


def main() -> None:
    parts = [(HERE / "summary.md").read_text().rstrip()]
    for name in ORDER:
        text = (HERE / "results" / f"{name}.md").read_text().rstrip()
        parts.append(f"<!-- from bench/results/{name}.md -->\n\n{text}")
    (HERE.parent / "BENCHMARKS.md").write_text("\n\n---\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
