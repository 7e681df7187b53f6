"""One UTC day of ERA5 or WRF meteorology -> ARL (transport.era5_to_arl / transport.wrf_to_arl),
written where rule met_convert declares it (``{results_dir}/{month}/met/{metday}_gz.arl``)."""

import logging
from pathlib import Path

from gzcarbon.logs import script_logging
from transport import era5_to_arl, wrf_to_arl

script_logging(snakemake.log[0])  # noqa: F821

out = Path(snakemake.output[0])
convert = era5_to_arl if snakemake.params.source == "era5" else wrf_to_arl
written = convert(list(snakemake.input), out.parent, file_format="%Y%m%d_gz.arl",
                  days=[snakemake.wildcards.metday])
if [Path(p) for p in written] != [out]:
    raise RuntimeError(f"met_convert wrote {written}, expected {out}")
logging.info("%s day %s -> %s", snakemake.params.source, snakemake.wildcards.metday, out)
