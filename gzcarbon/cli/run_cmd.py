"""``gzcarbon run``: a month or a year through Snakemake (the `snakemake` executable, as a
subprocess: the packages never import Snakemake)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .common import REPO, CliError, check_month, snakefile

#: --profile NAME: the repository's profiles (workflow/profiles/NAME); `default` is Snakemake's
#: workflow profile anyway (found through the `profiles` link next to the Snakefile)
PROFILES = REPO / "workflow" / "profiles"


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a month or a year (Snakemake with the right profile)",
                       description="Run the pipeline for a month (--month) or the twelve months of a "
                       "year (--year) with the `snakemake` executable. Arguments after `--` go to "
                       "snakemake unchanged.")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--month", help="YYYY-MM (default: the config's month/months)")
    when.add_argument("--year", type=int, help="the twelve months of this year and its annual report "
                      "(results/<year>/), in one Snakemake call")
    p.add_argument("--cores", type=int, default=2, help="cores (default 2)")
    p.add_argument("--profile", default=None, help="`slurm` (workflow/profiles/slurm), `default`, or the "
                   "path of a Snakemake profile directory (default: the workflow's default profile)")
    p.add_argument("--configfile", action="append", default=[], metavar="FILE",
                   help="config file(s) merged over config/config.yaml (repeatable)")
    p.add_argument("--directory", default=".", help="working directory of the run (results/ and "
                   "data/ are relative to it; default: here)")
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would run, run nothing")
    p.add_argument("--print-command", action="store_true", help="only print the snakemake command")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                   help="`-- ARGS`: more snakemake options, e.g. -- --rerun-triggers mtime")


def snakemake_executable() -> list[str]:
    """The `snakemake` of this environment (beside the running Python), else the one on PATH."""
    here = Path(sys.executable).parent / "snakemake"
    if here.is_file() and os.access(here, os.X_OK):
        return [str(here)]
    found = shutil.which("snakemake")
    if not found:
        raise CliError("the `snakemake` executable is not installed (pip install -e .)")
    return [found]


def profile_args(profile: str | None) -> list[str]:
    if not profile:
        return []
    path = PROFILES / profile if (PROFILES / profile).is_dir() else Path(profile)
    if not (path / "config.yaml").is_file():
        known = sorted(p.name for p in PROFILES.iterdir() if (p / "config.yaml").is_file())
        raise CliError(f"profile {profile!r}: no {path}/config.yaml; use one of {known} or a profile directory")
    return ["--profile", str(path.resolve())]


def command(args: argparse.Namespace) -> list[str]:
    cmd = [*snakemake_executable(), "-s", str(snakefile()), "--directory", str(Path(args.directory).resolve()),
           "--cores", str(args.cores), *profile_args(args.profile)]
    for f in args.configfile:
        if not os.path.isfile(f):
            raise CliError(f"config file {f} does not exist")
        cmd += ["--configfile", str(Path(f).resolve())]
    if args.month:
        cmd += ["--config", f"month={check_month(args.month)}"]
    elif args.year is not None:
        months = ", ".join(f"{args.year:04d}-{m:02d}" for m in range(1, 13))
        # year=: the annual report of results/<year>/ (docs/year.md) over the twelve months
        cmd += ["--config", f"year={args.year:04d}", f"months=[{months}]"]
    if args.dry_run:
        cmd.append("--dry-run")
    extra = list(args.snakemake_args or [])
    return cmd + (extra[1:] if extra[:1] == ["--"] else extra)


def run(args: argparse.Namespace) -> int:
    cmd = command(args)
    print("$ " + " ".join(f"'{c}'" if " " in c else c for c in cmd), file=sys.stderr)
    if args.print_command:
        return 0
    return subprocess.run(cmd, cwd=args.directory).returncode
