"""Bad hourly inputs give one clear error naming the file, the row and the fix."""

import os

import pytest

import power
from power import PowerInputError

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANTS = os.path.join(REPO, "config", "power_plants.csv")


def _edit(src, dst, fn):
    """Copy a CSV (keeping comment lines) and apply fn to its data lines."""
    lines = open(src).read().splitlines()
    data_start = next(i for i, ln in enumerate(lines) if not ln.startswith("#")) + 1
    head, data = lines[:data_start], lines[data_start:]
    data = fn(data)
    with open(dst, "w") as fh:
        fh.write("\n".join(head + data) + "\n")
    return str(dst), data_start


def _run(plants_file, files, **over):
    f = dict(files, **over)
    return power.emission_factors(plants_file, f["generation"], f["load"], f["external"])


def _set_value(data, k, value):
    parts = data[k].split(",")
    parts[-1] = value
    data[k] = ",".join(parts)
    return data


def test_negative_generation(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, first = _edit(files["generation"], tmp_path / "g.csv", lambda d: _set_value(d, 5, "-3.5"))
    with pytest.raises(PowerInputError) as e:
        _run(plants_file, files, generation=path)
    # data line 5 (0-based) is file line first + 5 + 1
    assert f"{path}, row {first + 6}: negative generation -3.5" in str(e.value)


def test_missing_generation_value(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, first = _edit(files["generation"], tmp_path / "g.csv", lambda d: _set_value(d, 0, ""))
    with pytest.raises(PowerInputError, match=rf"row {first + 1}: generation 'generation_mwh' is missing"):
        _run(plants_file, files, generation=path)


def test_missing_generation_row(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, _ = _edit(files["generation"], tmp_path / "g.csv", lambda d: d[:7] + d[8:])
    with pytest.raises(PowerInputError, match=r"no generation row for plant 'GZ_PAPER' at 2024-12-31T00:00"):
        _run(plants_file, files, generation=path)


def test_generation_above_capacity(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, first = _edit(files["generation"], tmp_path / "g.csv", lambda d: _set_value(d, 2, "920000"))
    with pytest.raises(PowerInputError) as e:
        _run(plants_file, files, generation=path)
    msg = str(e.value)
    assert f"row {first + 3}" in msg and "HY_EAST" in msg and "capacity of 920.0 MW" in msg and "kWh" in msg


def test_unknown_plant_and_retired_plant(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, first = _edit(files["generation"], tmp_path / "g.csv",
                        lambda d: d + ["2024-12-31T00:00:00,NEW_PLANT,10"])
    with pytest.raises(PowerInputError, match="'NEW_PLANT' is not in the plant registry"):
        _run(plants_file, files, generation=path)
    path, first = _edit(files["generation"], tmp_path / "g2.csv",
                        lambda d: d + ["2024-12-31T00:00:00,WANGLONG,10"])
    with pytest.raises(PowerInputError, match="'WANGLONG' is retired"):
        _run(plants_file, files, generation=path)


def test_plant_in_unknown_district(tmp_path, demo_files):
    files, _ = demo_files
    path, first = _edit(PLANTS, tmp_path / "p.csv", lambda d: [d[0].replace(",Nansha,", ",Dongguan,")] + d[1:])
    with pytest.raises(PowerInputError, match=rf"{path}, row {first + 1}: plant 'ZJ_COAL' is in unknown district 'Dongguan'"):
        _run(path, files)


def test_negative_and_missing_load(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, first = _edit(files["load"], tmp_path / "l.csv", lambda d: _set_value(d, 3, "-1"))
    with pytest.raises(PowerInputError, match=rf"row {first + 4}: negative load -1.0"):
        _run(plants_file, files, load=path)
    path, _ = _edit(files["load"], tmp_path / "l2.csv", lambda d: [x for x in d if not x.startswith("2025-01-02T05:00:00,Tianhe")])
    with pytest.raises(PowerInputError, match="no load row for district 'Tianhe' at 2025-01-02T05:00"):
        power.emission_factors(plants_file, files["generation"], path, files["external"],
                               start="2024-12-31", end="2025-01-03")


def test_external_in_wrong_units_and_bad_time(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    path, first = _edit(files["external"], tmp_path / "e.csv", lambda d: _set_value(d, 0, "386.9"))
    with pytest.raises(PowerInputError, match=rf"row {first + 1}: intensity 386.9 kg CO2/kWh.*g/kWh"):
        _run(plants_file, files, external=path)
    path, first = _edit(files["load"], tmp_path / "l.csv", lambda d: ["yesterday," + d[0].split(",", 1)[1]] + d[1:])
    with pytest.raises(PowerInputError, match=rf"row {first + 1}: time 'yesterday' is not an ISO 8601"):
        _run(plants_file, files, load=path)


def test_axis_not_covered(plants_file, demo_files):
    files, _ = demo_files
    with pytest.raises(PowerInputError, match="no generation row"):
        power.emission_factors(plants_file, files["generation"], files["load"], files["external"],
                               start="2024-12-31", end="2025-01-04")


def test_flows_file_unknown_district(tmp_path, plants_file, demo_files):
    files, _ = demo_files
    p = tmp_path / "flows.csv"
    p.write_text("time,from_district,to_district,flow_mwh\n2024-12-31T00:00:00,Nansha,external,5\n")
    with pytest.raises(PowerInputError, match=rf"{p}, row 2: unknown district 'external'"):
        power.emission_factors(plants_file, files["generation"], files["load"], files["external"], str(p))
