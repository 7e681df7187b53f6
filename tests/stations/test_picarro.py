"""Picarro raw files: round trip, duplicates/unsorted lines, truncated files, bad headers."""
import numpy as np
import pandas as pd
import pytest

from stations import picarro


def records(n=100, start="2025-01-01 04:00:00", dt=2.5, seed=1):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    epoch = (t0 - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1) + np.arange(n) * dt
    df = pd.DataFrame({c: rng.normal(10, 1, n) for c in picarro.G2401_COLUMNS[8:]})
    df["EPOCH_TIME"] = np.round(epoch, 3)
    df["ALARM_STATUS"] = 0
    df["INST_STATUS"] = 963
    df["species"] = 2
    df["MPVPosition"] = 1.0
    df["CO2_dry"] = rng.normal(420, 3, n)
    return df


def test_round_trip(tmp_path):
    df = records()
    p = tmp_path / picarro.file_name("CFKADS2001", pd.Timestamp("2025-01-01 04:00"))
    picarro.write_dat(p, df)
    assert p.name == "CFKADS2001-20250101-040000Z-DataLog_User.dat"
    header = p.read_text().split("\n", 1)[0]
    assert header.split() == picarro.G2401_COLUMNS
    assert header.startswith("DATE" + " " * 22 + "TIME")          # 26-character slots
    rr = picarro.read_raw(p)
    rec = rr.records
    assert len(rec) == 100
    for c in ("CO2_dry", "CH4_dry", "CavityPressure", "H2O"):
        np.testing.assert_allclose(rec[c], df[c], atol=1e-8)
    np.testing.assert_allclose(rec["EPOCH_TIME"], df["EPOCH_TIME"], atol=1e-9)
    assert rec["time"].iloc[1] == pd.Timestamp("2025-01-01 04:00:02.500")
    np.testing.assert_array_equal(rec["line"], np.arange(2, 102))
    s = rr.summary.iloc[0]
    assert (s.lines_read, s.lines_parsed, s.records, s.lines_duplicate) == (100, 100, 100, 0)


def test_unsorted_and_duplicated_lines(tmp_path):
    df = records(200)
    a, b = df.iloc[:100], df.iloc[90:]                      # 10 lines repeated in the 2nd file
    b = pd.concat([b.iloc[:50], b.iloc[[51, 50]], b.iloc[52:]])   # one swapped pair
    picarro.write_dat(tmp_path / "X-20250101-040000Z-DataLog_User.dat", a)
    picarro.write_dat(tmp_path / "X-20250101-050000Z-DataLog_User.dat", b)
    rr = picarro.read_raw(tmp_path)
    assert len(rr.records) == 200
    assert rr.records["time"].is_monotonic_increasing
    np.testing.assert_allclose(rr.records["CO2_dry"], df["CO2_dry"], atol=1e-8)
    s = rr.summary.set_index("file")
    assert s["lines_duplicate"].tolist() == [0, 10]
    assert s["lines_out_of_order"].tolist() == [0, 1]
    assert (s["lines_parsed"] == s["lines_duplicate"] + s["records"]).all()


def test_truncated_file_error_and_skip(tmp_path):
    p = tmp_path / "X-20250101-040000Z-DataLog_User.dat"
    picarro.write_dat(p, records(50))
    text = p.read_text()
    p.write_text(text[:-300])                                  # power cut in the last line
    with pytest.raises(picarro.PicarroFormatError, match=rf"{p.name}: line 51 is truncated"):
        picarro.read_raw(p)
    rr = picarro.read_raw(p, on_bad_lines="skip")
    s = rr.summary.iloc[0]
    assert (s.lines_read, s.lines_truncated, s.records) == (50, 1, 49)
    assert any(f"{p}:51" in m for m in rr.problems)


def test_truncated_line_in_the_middle(tmp_path):
    p = tmp_path / "X-20250101-040000Z-DataLog_User.dat"
    picarro.write_dat(p, records(20))
    lines = p.read_text().split("\n")
    lines[6] = lines[6][:200]                                  # data line 6 = file line 7
    p.write_text("\n".join(lines))
    with pytest.raises(picarro.PicarroFormatError, match=r"line 7 is truncated"):
        picarro.read_raw(p)
    rr = picarro.read_raw(p, on_bad_lines="skip")
    assert rr.summary.iloc[0].lines_truncated == 1 and len(rr.records) == 19


def test_missing_column_names_file_and_column(tmp_path):
    df = records(10).drop(columns=["CavityPressure"])
    text = picarro.format_records(records(10))
    rows = [ln.split() for ln in text.strip().split("\n")]
    k = rows[0].index("CavityPressure")
    p = tmp_path / "bad.dat"
    p.write_text("\n".join(" ".join(r[:k] + r[k + 1:]) for r in rows) + "\n")
    with pytest.raises(picarro.PicarroFormatError, match=r"bad.dat: line 1 \(header\) lacks column\(s\) CavityPressure"):
        picarro.read_raw(p)
    assert len(df) == 10


def test_local_time_stamps_are_refused(tmp_path):
    df = records(10)
    text = picarro.format_records(df)
    lines = text.split("\n")
    shifted = df.copy()
    shifted["EPOCH_TIME"] = df["EPOCH_TIME"] - 8 * 3600       # DATE/TIME 8 h ahead of EPOCH_TIME
    other = picarro.format_records(shifted).split("\n")
    w = picarro.FIELD_WIDTH
    mixed = [lines[0]] + [a[:2 * w] + b[2 * w:] for a, b in zip(lines[1:-1], other[1:-1])] + [""]
    p = tmp_path / "local.dat"
    p.write_text("\n".join(mixed))
    with pytest.raises(picarro.PicarroFormatError, match=r"local.dat: line 2: .* \+8.00 h"):
        picarro.read_raw(p)


def test_other_species_file(tmp_path):
    df = records(5)
    p = tmp_path / "X.dat"
    picarro.write_dat(p, df)
    rr = picarro.read_raw(p)
    with pytest.raises(ValueError, match="species"):
        picarro.species_column(rr.records, "n2o", where=str(p))


def test_merged_lines_and_blank_lines(tmp_path):
    p = tmp_path / "X-20250101-040000Z-DataLog_User.dat"
    picarro.write_dat(p, records(10))
    lines = p.read_text().split("\n")
    blank = lines[:4] + [""] + lines[4:]                       # an empty line (file line 5)
    p.write_text("\n".join(blank))
    rr = picarro.read_raw(p)
    s = rr.summary.iloc[0]
    assert (s.lines_read, s.lines_blank, s.records) == (11, 1, 10)
    merged = lines[:3] + [lines[3] + " " + lines[4]] + lines[5:]   # two records on file line 4
    p.write_text("\n".join(merged))
    with pytest.raises(picarro.PicarroFormatError, match=r"X-20250101-040000Z-DataLog_User.dat: line 4 has 50 fields, the header 25"):
        picarro.read_raw(p)


def test_only_date_time_left_is_truncated(tmp_path):
    p = tmp_path / "X.dat"
    picarro.write_dat(p, records(5))
    lines = p.read_text().split("\n")
    lines[3] = lines[3][:40]                                   # DATE and TIME only
    p.write_text("\n".join(lines))
    rr = picarro.read_raw(p, on_bad_lines="skip")
    s = rr.summary.iloc[0]
    assert (s.lines_truncated, s.lines_blank, s.records) == (1, 0, 4)


def test_compiled_scanner_equals_plain_python(tmp_path):
    """The numba line scanner and its plain-Python twin agree on a file with every defect."""
    from stations import fields
    p = tmp_path / "X.dat"
    picarro.write_dat(p, records(30))
    lines = p.read_text().split("\n")
    lines[3] = lines[3][:120]                                  # truncated
    lines[5] = lines[5].replace("963", "9x3", 1)                # not a number
    lines[7] = ""                                              # blank
    lines[9] = lines[9] + " " + lines[10]                      # merged
    raw = ("\n".join(lines)[:-50]).encode()                    # cut last line, no newline
    buf = np.frombuffer(raw, np.uint8)
    start = raw.index(b"\n") + 1
    col_out = np.array([-2, -2] + list(range(23)), np.int64)
    a = fields.scan_fields(buf, start, col_out, 23)
    b = fields.scan_fields_py(buf, start, col_out, 23)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    values, nf, bad, _ = a
    assert nf[[2, 6, 8]].tolist() == [len(lines[3].split()), 0, 50]
    assert bad[4] and not bad[[0, 1, 3]].any()
    # numbers parse like Python's float()
    tok = lines[1].split()
    np.testing.assert_array_equal(values[0], [float(x) for x in tok[2:]])
