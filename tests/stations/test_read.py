"""stations.read: format detection, ICOS ATC L2 text, plain CSV, clear errors."""
import numpy as np
import pandas as pd
import pytest

import stations
from stations.errors import FormatNotRecognisedError, SpeciesMismatchError
from stations.read import detect_format

ICOS = """# TITLE: ICOS ATC CO2 Release, Test (100.0 m)
# STATION CODE: TST
# LATITUDE: 53.0657
# LONGITUDE: 11.4429
# ALTITUDE: 70.0
# SAMPLING HEIGHTS: 30.0,100.0
#Site;SamplingHeight;Year;Month;Day;Hour;Minute;DecimalDate;co2;Stdev;NbPoints;Flag;InstrumentId
TST;100.0;2025;1;1;0;0;2025.0000;421.50;0.20;55;O;527
TST;30.0;2025;1;1;0;0;2025.0000;425.00;0.30;55;O;527
TST;100.0;2025;1;1;1;0;2025.0001;-999.99;-9.99;0;N;527
TST;100.0;2025;1;1;2;0;2025.0002;422.25;0.10;50;O;527
"""


def test_icos_text(tmp_path):
    p = tmp_path / "ICOS_ATC_L2_TST_CO2.txt"
    p.write_text(ICOS)
    assert detect_format(p) == "icos"
    ds = stations.read(p)
    assert ds.attrs["site"] == "TST" and ds.attrs["intake_height"] == 100.0
    assert ds.attrs["lat"] == 53.0657 and ds.attrs["elevation"] == 70.0
    assert ds.sizes["time"] == 3
    np.testing.assert_allclose(ds["value"].values, [421.5, np.nan, 422.25])
    assert ds["qcflag"].values.tolist() == [0, 1, 0]
    assert ds["nvalue"].values.tolist() == [55, 0, 50]
    assert pd.DatetimeIndex(ds["time"].values)[2] == pd.Timestamp("2025-01-01 02:00")
    low = stations.read(p, intake_height=30.0)
    np.testing.assert_allclose(low["value"].values, [425.0])
    with pytest.raises(SpeciesMismatchError, match=r"ICOS_ATC_L2_TST_CO2.txt: line 7 \(column header\) has 'co2', not 'ch4'"):
        stations.read(p, species="ch4")


def test_plain_csv(tmp_path):
    p = tmp_path / "obs.csv"
    p.write_text("# site: ABC\n# lon: 113.1\n# lat: 23.0\n# intake_height: 10\n"
                 "time,value,value_std_dev\n2025-01-01T00:00:00Z,420.0,0.1\n2025-01-01T01:00:00Z,421.0,0.2\n")
    assert detect_format(p) == "csv"
    ds = stations.read(p)
    assert ds.attrs["site"] == "ABC" and ds.attrs["intake_height"] == 10.0
    np.testing.assert_allclose(ds["value"].values, [420, 421])
    assert ds["nvalue"].values.tolist() == [1, 1]
    bad = tmp_path / "bad.csv"
    bad.write_text("time,co2\n2025-01-01,1\n")
    with pytest.raises(ValueError, match=r"bad.csv: column 'value' missing"):
        stations.read(bad)
    bad.write_text("time,value\n2025-01-01,1\nyesterday,2\n")
    with pytest.raises(ValueError, match=r"bad.csv: row 2 \(line 3\): time 'yesterday'"):
        stations.read(bad)


def test_unknown_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.dat"):
        stations.read(tmp_path / "nothing.dat")
    (tmp_path / "x.xyz").write_text("1")
    with pytest.raises(FormatNotRecognisedError, match="x.xyz: the content is none of the station formats"):
        stations.read(tmp_path / "x.xyz")
    with pytest.raises(ValueError, match="species must be one of"):
        stations.read(tmp_path / "x.xyz", species="n2o")
