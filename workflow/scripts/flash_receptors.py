"""The month's receptors released before the end of the flash cut-off day (receptors.csv format)."""

import logging

import pandas as pd

from gzcarbon.logs import script_logging
from transport.receptors import read_receptors, write_receptors

script_logging(snakemake.log[0])  # noqa: F821
rec = read_receptors(snakemake.input[0])  # noqa: F821
keep = pd.DatetimeIndex(rec["time"]) < pd.Timestamp(snakemake.params.end)  # noqa: F821
write_receptors(snakemake.output[0], rec[keep].reset_index(drop=True))  # noqa: F821
logging.info("%d of %d receptors released before %s", int(keep.sum()), len(rec), snakemake.params.end)  # noqa: F821
