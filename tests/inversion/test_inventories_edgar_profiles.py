"""EDGAR's published temporal-profile tables (issue 16.2 leftover) read into temporal factors:
weekday factors by country and activity (real: EDGAR's weekly_profiles.csv, rows of CHN and GBR,
tests/data/real_run/edgar_profiles), hourly profiles per month and day type in local time, and the
country's weekend definition (written here in EDGAR's layout: hourly_profiles.csv with
Country_code_A3, activity_code, month_id, Daytype_id, h1..h24; weekenddays.csv and weekdays.csv
with ';' as EDGAR publishes them)."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inversion.inventories import InventoryError, read_edgar_profiles, temporal_factors

WEEKLY = Path(__file__).resolve().parents[1] / "data" / "real_run" / "edgar_profiles" / "weekly_profiles.csv"


def _hour_row(code, month, daytype):
    """A distinct diurnal shape per activity, month and day type (fractions of the day)."""
    h = np.arange(24)
    peak = {"TRO": 8.0, "ENE": 14.0}[code] + 0.3 * month - daytype
    v = 1.0 + 0.8 * np.exp(-0.5 * ((h - peak) / 2.5) ** 2) + 0.05 * daytype
    return v / v.sum()


@pytest.fixture
def tables(tmp_path):
    shutil.copy(WEEKLY, tmp_path / "weekly_profiles.csv")
    with open(tmp_path / "hourly_profiles.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Country_code_A3", "activity_code", "month_id", "Daytype_id", *(f"h{i}" for i in range(1, 25))])
        for code in ("TRO", "ENE"):
            for m in range(1, 13):
                for dt in (1, 2, 3):
                    w.writerow(["CHN", code, m, dt, *(f"{x:.9f}" for x in _hour_row(code, m, dt))])
    (tmp_path / "weekenddays.csv").write_text("Country_code_A3;Weekend_type_id\nCHN;1\nGBR;1\nARE;2\n")
    (tmp_path / "weekdays.csv").write_text(
        "Weekend_type_id;Weekday_id;Daytype_id\n"
        + "".join(f"1;{d};{1 if d <= 5 else d - 4}\n" for d in range(1, 8))
        + "".join(f"2;{d};{2 if d == 5 else 3 if d == 6 else 1}\n" for d in range(1, 8)))
    return tmp_path


def _weekly(country, code):
    with open(WEEKLY) as fh:
        rows = [r for r in csv.DictReader(fh) if r["Country_code_A3"] == country and r["activity_code"] == code]
    return np.array([float(r["daily_factor"]) for r in sorted(rows, key=lambda r: int(r["Weekday_id"]))])


def test_weekday_and_hourly_profiles_of_a_country(tables):
    prof = read_edgar_profiles(tables, "CHN")
    np.testing.assert_array_equal(prof["TRO"]["weekday"], _weekly("CHN", "TRO"))
    assert prof["TRO"]["weekday"][:5].min() > prof["TRO"]["weekday"][5:].max()  # Monday first
    assert set(prof) >= {"TRO", "ENE", "RCO", "IND"} and "hour" not in prof["RCO"]
    # Saturday of July takes day type 2, Sunday 3, Wednesday 1
    for wd, dt in ((5, 2), (6, 3), (2, 1)):
        np.testing.assert_allclose(prof["ENE"]["hour"][6, wd], _hour_row("ENE", 7, dt), atol=1e-9)


def test_factors_in_local_time_against_an_explicit_loop(tables):
    prof = read_edgar_profiles(tables, "CHN")["TRO"]
    times = pd.date_range("2023-02-01 00:00", "2023-03-01 00:00", freq="h", inclusive="left") - pd.Timedelta("8h")
    got = temporal_factors(times, 8, weekday=prof["weekday"], hourly=prof["hour"])
    w = _weekly("CHN", "TRO")
    want = []
    for t in times:
        loc = t + pd.Timedelta("8h")
        dt = 1 if loc.day_of_week <= 4 else loc.day_of_week - 3
        day = _hour_row("TRO", loc.month, dt)
        want.append(w[loc.day_of_week] / w.mean() * day[loc.hour] / day.mean())
    np.testing.assert_allclose(got, want, rtol=1e-7)  # the CSV carries 9 decimals
    # 28 local days of one month = 4 whole weeks: the mean factor is 1 (the annual mean is kept)
    assert got.mean() == pytest.approx(1.0, rel=1e-12)


def test_missing_pieces_are_named(tables):
    with pytest.raises(InventoryError, match="weekenddays.csv: no row for country 'XYZ'"):
        read_edgar_profiles(tables, "XYZ")
    df = pd.read_csv(tables / "hourly_profiles.csv")
    df[~((df.activity_code == "ENE") & (df.month_id == 3) & (df.Daytype_id == 2))].to_csv(
        tables / "hourly_profiles.csv", index=False)
    with pytest.raises(InventoryError, match="CHN ENE has no row for month_id 3, Daytype_id 2"):
        read_edgar_profiles(tables, "CHN")
    (tables / "weekdays.csv").unlink()
    with pytest.raises(InventoryError, match="weekdays.csv not found"):
        read_edgar_profiles(tables, "CHN")
