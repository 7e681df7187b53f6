"""Pair the month's receptors with releases of the user's footprint files (transport.from_files):
matches.csv, or one error naming the receptors without a footprint and the unmatched files."""

import logging

from gzcarbon.logs import script_logging
from transport.from_files import footprint_catalogue, match_receptors, write_matches
from transport.receptors import read_receptors

script_logging(snakemake.log[0])  # noqa: F821

rec = read_receptors(snakemake.input.receptors)
cat = footprint_catalogue(list(snakemake.input.files), snakemake.params.layer_height)
logging.info("%d release(s) in %d footprint file(s)", len(cat), len(snakemake.input.files))
matches = match_receptors(rec, cat)
write_matches(snakemake.output[0], matches)
logging.info("%d receptor(s) matched: %s", len(matches),
             matches.groupby("file").size().to_dict())
