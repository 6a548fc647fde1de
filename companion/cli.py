"""``companion`` command line (DESIGN.md §2).

Each subcommand lives in :mod:`companion.commands` as a module with ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their subcommand runs, so ``companion --help``
stays fast. With ``--json`` a subcommand prints only JSON lines on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: subcommand -> (module in companion.commands, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "db": ("db", "build or inspect a score database"),
    "identify": ("identify", "identify the piece and bar of audio or MIDI inputs"),
    "transcribe": ("transcribe", "transcribe piano audio to notes"),
    "follow": ("follow", "follow an input in a score"),
    "gui": ("gui", "open the companion window"),
}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), or ``None``."""
    for word in argv:
        if word in SUBCOMMANDS:
            return word
        if not word.startswith("-"):
            return None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only the chosen subcommand's module is imported (all of them when
    ``argv`` is ``None``), so one subcommand's heavy or broken import never affects another."""
    parser = argparse.ArgumentParser(prog="companion", description="The Piano Music Companion.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(argv) if argv is not None else None
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if argv is None or name == chosen:
            mod = importlib.import_module(f"companion.commands.{module}")
            mod.add_arguments(p)
            p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    if not getattr(args, "json", False) and args.verbose == 0:
        level = logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        logging.getLogger("companion").warning("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
