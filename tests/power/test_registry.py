"""Plant registry: the shipped file is valid and placed; bad registries give clear errors."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from power import DISTRICTS, PowerInputError, district_names, read_plants

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTS = os.path.join(REPO, "config", "power_plants.csv")
DISTRICTS_FILE = os.path.join(REPO, "config", "districts.geojson")


def test_shipped_registry():
    reg = read_plants(PLANTS)
    assert len(reg) == 12
    assert set(reg.index[~reg["dispatched"]]) == {"WANGLONG", "GZ_POWER"}
    assert reg.loc["HY_EAST", ["lon", "lat"]].tolist() == [113.498, 23.066]
    assert (reg["location_quality"] == "published").sum() == 1
    assert (reg.loc[reg["fuel"] == "waste", "confidence"] == "assumption").all()
    # intensity derived from heat rate x carbon content
    assert reg.loc["HR_THERMAL", "intensity_t_per_mwh"] == pytest.approx(9.8 * 0.0946)
    assert reg["intensity_t_per_mwh"].between(0.3, 1.1).all()
    # operating capacity of the city: ~5.9 GW
    assert reg.loc[reg["dispatched"], "capacity_mw"].sum() == pytest.approx(5930)


@pytest.mark.skipif(not os.path.exists(DISTRICTS_FILE), reason="districts GeoJSON not shipped yet")
def test_plants_lie_in_their_district_and_names_match():
    from shapely.geometry import Point, shape

    assert sorted(district_names(DISTRICTS_FILE)) == sorted(DISTRICTS)
    with open(DISTRICTS_FILE, encoding="utf-8") as fh:
        polys = {f["properties"]["name_en"]: shape(f["geometry"]) for f in json.load(fh)["features"]}
    for pid, p in read_plants(PLANTS).iterrows():
        assert polys[p["district"]].contains(Point(p["lon"], p["lat"])), pid


def test_district_names_fallback_and_the_one_reader(tmp_path):
    from gzcarbon.districts import DistrictFileError

    assert district_names(None) == DISTRICTS and district_names("") == DISTRICTS
    # a districts file that is named but absent is an error, not a silent fall back on the built-in list
    absent = tmp_path / "absent.geojson"
    with pytest.raises(DistrictFileError, match=r"absent\.geojson: not found"):
        district_names(str(absent))
    # the one reader's error type and message (gzcarbon.districts), not a power-stage copy of it
    with open(DISTRICTS_FILE, encoding="utf-8") as fh:
        gj = json.load(fh)
    del gj["features"][3]["properties"]["name_en"]
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(gj), encoding="utf-8")
    with pytest.raises(DistrictFileError, match=r"bad\.geojson: feature 3 lacks property \['name_en'\]"):
        district_names(str(bad))


def _write(tmp_path, text):
    p = tmp_path / "plants.csv"
    p.write_text(text)
    return str(p)


HEADER = "plant_id,name,district,lon,lat,fuel,capacity_mw,intensity_t_per_mwh,status\n"


def test_unknown_district_names_file_and_row(tmp_path):
    path = _write(tmp_path, "# comment line\n" + HEADER + "A,a,Tianhe,113.3,23.1,gas,100,0.37,operating\n"
                  "B,b,Shenzhen,113.3,23.1,coal,100,0.9,operating\n")
    with pytest.raises(PowerInputError) as e:
        read_plants(path)
    msg = str(e.value)
    assert path in msg and "row 4" in msg and "Shenzhen" in msg and "Tianhe" in msg


def test_negative_capacity(tmp_path):
    path = _write(tmp_path, HEADER + "A,a,Tianhe,113.3,23.1,gas,-100,0.37,operating\n")
    with pytest.raises(PowerInputError, match=r"row 2: capacity_mw = -100.0"):
        read_plants(path)


def test_missing_column(tmp_path):
    path = _write(tmp_path, "plant_id,name,district,lon,lat,fuel,status\nA,a,Tianhe,113.3,23.1,gas,operating\n")
    with pytest.raises(PowerInputError, match=r"missing column\(s\) \['capacity_mw'\]"):
        read_plants(path)


def test_intensity_in_wrong_units(tmp_path):
    path = _write(tmp_path, HEADER + "A,a,Tianhe,113.3,23.1,gas,100,370,operating\n")
    with pytest.raises(PowerInputError, match="row 2: emission intensity 370.*check the units"):
        read_plants(path)


def test_no_intensity_at_all(tmp_path):
    path = _write(tmp_path, HEADER + "A,a,Tianhe,113.3,23.1,gas,100,,operating\n")
    with pytest.raises(PowerInputError, match="row 2: plant 'A' has no intensity"):
        read_plants(path)


def test_duplicate_and_bad_status(tmp_path):
    path = _write(tmp_path, HEADER + "A,a,Tianhe,113.3,23.1,gas,100,0.4,operating\nA,b,Tianhe,113.3,23.1,gas,100,0.4,operating\n")
    with pytest.raises(PowerInputError, match="row 3: plant_id 'A' appears twice"):
        read_plants(path)
    path = _write(tmp_path, HEADER + "A,a,Tianhe,113.3,23.1,gas,100,0.4,mothballed\n")
    with pytest.raises(PowerInputError, match="status 'mothballed'"):
        read_plants(path)


def test_dataframe_input():
    df = pd.DataFrame({"plant_id": ["X"], "name": ["x"], "district": ["Haizhu"], "lon": [113.3],
                       "lat": [23.08], "fuel": ["gas"], "capacity_mw": [50.0],
                       "intensity_t_per_mwh": [0.4], "status": ["operating"]})
    reg = read_plants(df)
    assert reg.loc["X", "dispatched"] and np.isclose(reg.loc["X", "intensity_t_per_mwh"], 0.4)
