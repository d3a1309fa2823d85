"""The `victron-bms` command. One module per subcommand, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from victron_ble_bms import __version__

# Subcommands in the order `--help` lists them; a module that is not there is skipped.
_COMMANDS = ("scan", "decode", "record", "emulate", "dashboard", "keys", "serve", "doctor")


class _Parser(argparse.ArgumentParser):
    """argparse quotes what it did not understand ("invalid choice: '…'", "unrecognized
    arguments: …"): a key typed in the wrong place would be echoed in full. Subcommand
    parsers are made of this class too (`add_subparsers` uses the parent's type)."""

    def error(self, message: str) -> NoReturn:
        from victron_ble_bms.sources.keys import redact_keys

        super().error(redact_keys(message))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that subcommand (the others' modules are
    then not imported: `keys add` starts in half the time)."""
    parser = _Parser(
        prog="victron-bms",
        description="Read Victron Instant Readout (BLE) from batteries and BMSes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, when it is one of ours (else None: the
    full parser then says what is wrong, or prints the help listing every command)."""
    for arg in argv:
        if arg in ("-h", "--help", "--version"):
            return None
        if not arg.startswith("-"):  # the top level has no option that takes a value
            return arg if arg in _COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_command(given))
    args = parser.parse_args(given)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        code: int = args.run(args)
        # What is still buffered goes now, inside this handler: left to the interpreter's exit
        # (Python 3.13), a closed pipe would print "Exception ignored …" and exit 120.
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `| head` closed stdout: stop quietly, as a Unix tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
