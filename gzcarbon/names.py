"""Names shared by every stage: the city, the columns of the files at the seams, species."""

from __future__ import annotations

#: Name of the city total in district tables (the row after the 11 districts).
CITY = "Guangzhou"

#: Columns of obs/selected.csv (written by stations.selection, read by the inversion and the
#: products; docs/formats.md).
SELECTED_COLUMNS = ("site", "time", "intake_height", "value", "value_std_dev", "background",
                    "background_sigma")
