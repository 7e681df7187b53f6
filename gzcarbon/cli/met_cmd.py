"""``gzcarbon met``: ERA5 or WRF files to one ARL file per UTC day (what rule met_convert does)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CliError


def add_parser(sub) -> None:
    p = sub.add_parser("met", help="convert ERA5 or WRF files to daily ARL files for HYSPLIT",
                       description="Convert ERA5 pressure- and single-level NetCDF files (old or new CDS "
                       "layout, CDS zips) or WRF wrfout files to one ARL file per UTC day "
                       "(transport.era5_to_arl / transport.wrf_to_arl; docs/transport.md). Point "
                       "inputs.met_dir at the output directory for a real run.")
    p.add_argument("source", choices=("era5", "wrf"), help="what the files are")
    p.add_argument("files", nargs="+", help="the input files (all of one period)")
    p.add_argument("--out-dir", required=True, help="directory of the ARL files (created)")
    p.add_argument("--file-format", default="%Y%m%d_gz.arl",
                   help="strftime name of each daily file (default %%Y%%m%%d_gz.arl, as inputs.met_file_format)")
    p.add_argument("--day", action="append", default=[], metavar="YYYY-MM-DD",
                   help="only this UTC day (repeatable; default: every day the files hold)")


def run(args: argparse.Namespace) -> int:
    from transport import era5_to_arl, wrf_to_arl

    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        raise CliError(f"input file(s) not found: {missing}")
    convert = era5_to_arl if args.source == "era5" else wrf_to_arl
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    try:
        written = convert(list(args.files), args.out_dir, file_format=args.file_format, days=args.day or None)
    except (ValueError, OSError) as err:  # the converters name the file, the variable and the fix
        raise CliError(str(err)) from None
    for path in written:
        print(path)
    return 0
