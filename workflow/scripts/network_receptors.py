"""Write the candidates' table and receptor schedule (inversion.network, transport.receptors)."""

import logging

import pandas as pd

from gzcarbon.atomic import write_csv
from gzcarbon.logs import script_logging
from inversion.network import CANDIDATE_COLUMNS, candidate_sites
from transport.receptors import schedule, write_receptors

script_logging(snakemake.log[0])  # noqa: F821

table = pd.DataFrame(snakemake.params.candidates)[CANDIDATE_COLUMNS]  # noqa: F821
rec = schedule(candidate_sites(table), snakemake.params.days,  # noqa: F821
               hours_local=snakemake.params.hours_local, utc_offset=snakemake.params.utc_offset)  # noqa: F821
write_csv(table, snakemake.output.table, index=False)  # noqa: F821
write_receptors(snakemake.output.receptors, rec)  # noqa: F821
logging.info("%d candidates, %d receptors on %s", len(table), len(rec), ", ".join(snakemake.params.days))  # noqa: F821
