"""Raw-file search (issue 13, items 5 and 6): gzip and zip files read, every other file counted and
named, analyser serial checked against stations.yaml."""
import gzip
import logging
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from stations import hourly, picarro
from gzcarbon.demo.stations import write_demo_raw

from station_truth import make_truth

PERIOD = ("2025-01-01", "2025-01-02")


@pytest.fixture(scope="module")
def clean(tmp_path_factory, urban):
    d = tmp_path_factory.mktemp("yxu_raw")
    truth = make_truth([urban], days=1, seed=4, noise_ppm=3.0)
    write_demo_raw(truth, urban, d / "raw", seed=12, record_seconds=10.0)
    ing = hourly.process_site(d / "raw", urban, period=PERIOD)
    return d, ing


def _copy(clean, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(clean[0] / "raw", raw)
    return raw


def _totals(summary):
    read = summary[summary["status"] == "read"]
    return read[["lines_read", "records", "ambient_used"]].sum().to_dict()


def test_gzipped_files_are_read(clean, urban, tmp_path):
    """Half of the files gzip-compressed: the same hourly values and line counts as plain files
    (before: 12 of 24 hours vanished without a count)."""
    _, base = clean
    raw = _copy(clean, tmp_path)
    files = sorted(raw.glob("*.dat"))
    for f in files[::2]:
        f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    assert len(list(raw.glob("*.dat.gz"))) == 12
    ing = hourly.process_site(raw, urban, period=PERIOD)
    pd.testing.assert_frame_equal(ing.hourly[50.0], base.hourly[50.0])
    assert _totals(ing.summary) == _totals(base.summary)
    assert ing.summary["file"].str.endswith(".dat.gz").sum() == 12


def test_zip_archive_is_read_and_its_other_members_named(clean, urban, tmp_path):
    """A daily zip archive of the .dat files (plus a notes file inside): read like the files."""
    _, base = clean
    raw = _copy(clean, tmp_path)
    files = sorted(raw.glob("*.dat"))
    with zipfile.ZipFile(raw / "CFKADS2002-20250101-DataLog_User.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for f in files[12:]:
            z.write(f, f"2025/01/01/{f.name}")
        z.writestr("2025/01/01/notes.txt", "valve 1 serviced")
    for f in files[12:]:
        f.unlink()
    ing = hourly.process_site(raw, urban, period=PERIOD)
    pd.testing.assert_frame_equal(ing.hourly[50.0], base.hourly[50.0])
    assert _totals(ing.summary) == _totals(base.summary)
    s = ing.summary
    assert s["file"].str.startswith("CFKADS2002-20250101-DataLog_User.zip!").sum() == 13
    row = s[s["file"].str.endswith("notes.txt")].iloc[0]
    assert row["status"] == "not_raw" and "not a .dat file" in row["reason"]


def test_other_files_are_counted_and_named(clean, urban, tmp_path, caplog):
    raw = _copy(clean, tmp_path)
    (raw / "README.txt").write_text("site notes")
    (raw / "sub").mkdir()
    (raw / "sub" / "CFKADS2002-20250101-050000Z-DataLog_Private.h5").write_bytes(b"\x89HDF")
    (raw / "CFKADS2002-20250101-060000Z-DataLog_User.dat.part").write_text("cut")
    (raw / "broken.zip").write_bytes(b"not a zip")
    files, skipped = picarro.find_raw_files(raw)
    assert len(files) == 24
    reasons = {p.name: why for p, why in skipped}
    assert set(reasons) == {"README.txt", "CFKADS2002-20250101-050000Z-DataLog_Private.h5",
                            "CFKADS2002-20250101-060000Z-DataLog_User.dat.part", "broken.zip"}
    assert "HDF5" in reasons["CFKADS2002-20250101-050000Z-DataLog_Private.h5"]
    assert "incomplete" in reasons["CFKADS2002-20250101-060000Z-DataLog_User.dat.part"]
    with caplog.at_level(logging.WARNING, logger="stations.hourly"):
        ing = hourly.process_site(raw, urban, period=PERIOD)
    s = ing.summary.set_index("file")
    assert (s["status"] == "not_raw").sum() == 4
    assert s.loc["sub/CFKADS2002-20250101-050000Z-DataLog_Private.h5", "status"] == "not_raw"
    assert ing.info["raw_files_not_raw"] == 4 and ing.info["raw_files_read"] == 24
    logged = " ".join(r.message for r in caplog.records)
    for name in reasons:
        assert f"not read: {raw}" in logged and name in logged
    # the list form gives the same files (what the Snakefile passes as the rule's input)
    assert picarro.find_raw_files([str(f) for f in files])[0] == files


def test_cut_gzip_file_is_read_up_to_the_cut(clean, urban, tmp_path):
    raw = _copy(clean, tmp_path)
    f = sorted(raw.glob("*.dat"))[3]
    data = gzip.compress(f.read_bytes())
    f.with_name(f.name + ".gz").write_bytes(data[:len(data) // 2])
    f.unlink()
    ing = hourly.process_site(raw, urban, period=PERIOD)
    row = ing.summary.set_index("file").loc[f.name + ".gz"]
    assert 0 < row["records"] < 360 and row["lines_truncated"] <= 1
    assert any("gzip stream ends early" in p for p in ing.problems)
    with pytest.raises(picarro.PicarroFormatError, match="the gzip file is cut off"):
        picarro.read_raw(raw)


def test_another_sites_file_stops_the_job(clean, urban, all_sites, tmp_path):
    """One file of NST's analyser (CFKADS2001) in YXU's folder: stops naming the file, the serial
    found, the serial expected and the site the analyser belongs to (before: merged silently)."""
    raw = _copy(clean, tmp_path)
    f = sorted(raw.glob("*.dat"))[5]
    foreign = raw / f.name.replace("CFKADS2002", "CFKADS2001")
    shutil.copy(f, foreign)
    with pytest.raises(picarro.SerialMismatchError) as err:
        hourly.process_site(raw, urban, period=PERIOD, sites=all_sites)
    msg = str(err.value)
    assert str(foreign) in msg and "analyser serial CFKADS2001" in msg and "expects CFKADS2002" in msg
    assert "analyser of site NST" in msg and "move the file" in msg
    foreign.rename(raw / f.name.replace("CFKADS2002", "CFKADS9999"))
    with pytest.raises(picarro.SerialMismatchError, match="no site of the stations file has that analyser"):
        hourly.process_site(raw, urban, period=PERIOD, sites=all_sites)
    # after an analyser exchange both serials are listed: accepted
    ok = dict(urban, analyser={"model": "G2401", "serial": ["CFKADS2002", "CFKADS9999"]})
    ing = hourly.process_site(raw, ok, period=PERIOD, sites=all_sites)
    assert set(ing.summary["serial"]) == {"CFKADS2002", "CFKADS9999"}
    assert ing.info["analyser_serials"] == "CFKADS2002,CFKADS9999"


def test_demo_files_carry_the_configured_serial(clean, urban):
    files, skipped = picarro.find_raw_files(clean[0] / "raw")
    assert not skipped
    assert {picarro.file_serial(f) for f in files} == {urban["analyser"]["serial"]}
    assert np.all([f.name.endswith("Z-DataLog_User.dat") for f in files])
