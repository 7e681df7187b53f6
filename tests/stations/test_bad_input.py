"""Bad input of the issue's list, per format: one clear message naming the file and the line.

Covered elsewhere: Picarro truncated lines / merged lines / missing columns / local-time stamps
(test_picarro.py), duplicated and out-of-order Picarro records (counted and sorted,
test_picarro.py), all-missing days (flagged, test_hourly.py), ObsPack and ICOS NetCDF files of
another species (test_netcdf.py).
"""
import numpy as np
import pandas as pd
import pytest

import stations
from stations import picarro

from test_picarro import records
from test_read import ICOS


def test_csv_truncated_duplicated_unsorted_species(tmp_path):
    p = tmp_path / "obs.csv"
    p.write_text("# site: ABC\ntime,value,value_std_dev\n2025-01-01T00:00:00Z,420.0,0.1\n"
                 "2025-01-01T01:00:00Z,42")                          # cut by a power failure
    with pytest.raises(ValueError, match=r"obs.csv: line 4 is truncated: 2 fields, the header 3 "
                                         r"\(last line, no newline"):
        stations.read(p)
    p.write_text("time,value\n2025-01-01T02:00:00Z,422\n2025-01-01T00:00:00Z,420\n"
                 "2025-01-01T01:00:00Z,421\n2025-01-01T00:00:00Z,420.5\n")
    with pytest.raises(ValueError, match=r"obs.csv: line 5 repeats the time 2025-01-01 00:00:00 of line 3"):
        stations.read(p)
    p.write_text("time,value\n2025-01-01T02:00:00Z,422\n2025-01-01T00:00:00Z,420\n2025-01-01T01:00:00Z,421\n")
    ds = stations.read(p)                                             # out of order: sorted
    np.testing.assert_allclose(ds["value"].values, [420, 421, 422])
    # a local-time stamp with its offset is converted to UTC
    p.write_text("time,value\n2025-01-01T08:00:00+08:00,420\n")
    assert pd.Timestamp(stations.read(p)["time"].values[0]) == pd.Timestamp("2025-01-01 00:00")
    p.write_text("# species: ch4\ntime,value\n2025-01-01T00:00:00Z,1950\n")
    with pytest.raises(ValueError, match=r"obs.csv: line 1-1 \(# species: ch4\) the file holds ch4, not co2"):
        stations.read(p)
    assert stations.read(p, species="ch4")["value"].values[0] == 1950
    p.write_text("time,value\n2025-01-01T00:00:00Z,4x0\n")
    with pytest.raises(ValueError, match=r"obs.csv: line 2: value '4x0' is not a number"):
        stations.read(p)


def test_icos_text_truncated_and_duplicated(tmp_path):
    p = tmp_path / "ICOS_ATC_L2_TST_CO2.txt"
    p.write_text(ICOS.rstrip("\n")[:-12])                             # last line cut
    with pytest.raises(ValueError, match=r"ICOS_ATC_L2_TST_CO2.txt: line 11 is truncated"):
        stations.read(p)
    lines = ICOS.rstrip("\n").split("\n")
    p.write_text("\n".join(lines + [lines[7]]) + "\n")                # 100 m, hour 0 again
    with pytest.raises(ValueError, match=r"line 12 repeats the time 2025-01-01 00:00:00 of line 8"):
        stations.read(p)
    # the same time at another sampling height is not a duplicate; unsorted rows are sorted
    p.write_text("\n".join(lines[:7] + [lines[10], lines[8], lines[7], lines[9]]) + "\n")
    ds = stations.read(p)
    assert pd.DatetimeIndex(ds["time"].values).hour.tolist() == [0, 1, 2]


def test_picarro_file_of_another_species_named(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    picarro.write_dat(d / "X-20250101-040000Z-DataLog_User.dat", records(20))
    other = picarro.format_records(records(20, start="2025-01-01 05:00:00"))
    rows = [ln.split() for ln in other.strip().split("\n")]
    drop = [rows[0].index(c) for c in ("CO2", "CO2_dry")]
    text = "\n".join(" ".join(f for k, f in enumerate(r) if k not in drop) for r in rows) + "\n"
    (d / "Y-20250101-050000Z-DataLog_User.dat").write_text(text)     # a CH4/CO-only analyser
    with pytest.raises(picarro.PicarroFormatError,
                       match=r"Y-20250101-050000Z-DataLog_User.dat: line 1 \(header\) has no CO2 column "
                             r"\(CO2_dry or CO2\); the file holds ch4, co"):
        stations.read(d)
    assert stations.read(d / "Y-20250101-050000Z-DataLog_User.dat", species="ch4").sizes["time"] == 20
