"""The ``gzcarbon`` command: what users do outside a full Snakemake run (docs/cli.md).

    gzcarbon run      a month or a year (runs the `snakemake` executable with the right profile)
    gzcarbon met      ERA5 or WRF files -> daily ARL files (transport.era5_to_arl / wrf_to_arl)
    gzcarbon check    the inputs of a real run cover the month (the checks of rule check_inputs)
    gzcarbon osse     what the network can know, on a finished demo run (gzcarbon.cli.osse)
    gzcarbon results  a month's district table with σ, diagnostics and the report's path

This package is the top layer beside the demo world (docs/architecture.md): it may import the
stages; no stage and nothing of the core imports it. Each subcommand is one module with
``add_parser(subparsers)`` and ``run(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module of this package
COMMANDS = {"run": "run_cmd", "met": "met_cmd", "check": "check_cmd", "osse": "osse_cmd",
            "results": "results_cmd"}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="gzcarbon", description="Guangzhou CO2 flux pipeline: what users do outside a full "
        "Snakemake run (docs/cli.md).",
        epilog="`gzcarbon <command> --help` shows a command's options; docs/cli.md has examples.")
    sub = ap.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    sub.required = True
    for name, module in COMMANDS.items():
        importlib.import_module(f"{__name__}.{module}").add_parser(sub)
    return ap


def main(argv=None) -> int:
    """Entry point of the ``gzcarbon`` console script (pyproject ``[project.scripts]``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["osse"]:  # its own parser (also `python tools/osse.py`): options passed through
        from .osse import main as osse_main

        return osse_main(argv[1:], prog="gzcarbon osse")
    args = parser().parse_args(argv)
    module = importlib.import_module(f"{__name__}.{COMMANDS[args.command]}")
    from .common import CliError

    try:
        return int(module.run(args) or 0)
    except CliError as err:
        print(f"gzcarbon {args.command}: {err}", file=sys.stderr)
        return 2
