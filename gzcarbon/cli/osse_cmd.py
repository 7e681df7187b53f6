"""``gzcarbon osse RUN_DIR ...``: the OSSE of :mod:`gzcarbon.cli.osse` (its options: ``gzcarbon osse -h``)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    sub.add_parser("osse", add_help=False, help="what the network can know: re-solve a finished demo run on "
                   "noise draws, prior-drawn or error-model truths (gzcarbon osse -h for its options)")


def run(args: argparse.Namespace) -> int:  # gzcarbon.cli.main hands `osse` to gzcarbon.cli.osse.main
    from .osse import main

    return main([], prog="gzcarbon osse")
