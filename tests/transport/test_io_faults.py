"""I/O faults stop the job naming the file and the cause; only HYSPLIT failures become failure rows
(issue 13, items 4, 10 and 11: full disk, permissions, read-only, unique temporary names, truncated
Jacobian).

The real-disk tests mount a small tmpfs in a private mount namespace (``unshare -rm``) and are
skipped where that is not allowed.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

import transport.stilt_driver as sd
from gzcarbon.atomic import FileIOError, atomic_write
from gzcarbon.atomic import tmp_path as temp_name
from transport.stilt_driver import StiltSettings, run_site_day

ROOT = Path(__file__).resolve().parents[2]
GRID = dict(lon_min=113.0, lon_max=113.1, lat_min=23.0, lat_max=23.1, res=0.05)
FMT = "%Y%m%d_gz.arl"


def _fake_ds(rec, g, settings):
    release = pd.Timestamp(rec["time"])
    hours = pd.date_range(release.floor("h") - pd.Timedelta(hours=int(settings.n_hours)),
                          release.floor("h"), freq="h")
    foot = np.full((len(hours), g.ny, g.nx), 0.5, np.float32)
    return xr.Dataset(
        {"foot": (("time", "lat", "lon"), foot),
         "foot_total": (("time",), foot.sum(axis=(1, 2)).astype(float))},
        coords={"time": hours.values, "lat": g.lat, "lon": g.lon},
        attrs={"receptor_id": str(rec["receptor_id"]), "release_time": release.isoformat(),
               "n_particles": 10, "left_domain_fraction": 0.0})


def _receptors():
    t = pd.to_datetime(["2025-01-02 04:30", "2025-01-02 05:30", "2025-01-02 06:30"])
    return pd.DataFrame(dict(receptor_id=[f"YXU_{x:%Y%m%d%H%M}_50" for x in t], site="YXU",
                             time=t, lon=113.05, lat=23.05, agl=50.0))


@pytest.fixture
def met(tmp_path):
    p = tmp_path / "met" / "20250102_gz.arl"
    p.parent.mkdir()
    p.write_bytes(b"\1" * 1000)
    return [p]


def _run(tmp_path, met):
    out = tmp_path / "fp" / "YXU" / "20250102.nc"
    s = run_site_day(_receptors(), met, GRID, StiltSettings(n_hours=3), out,
                     tmp_path / "fp" / "work" / "YXU", met_file_format=FMT, check_met=False)
    return s, out


def _failing_on_second(exc):
    calls = []

    def fake(rec, met, g, settings, work_dir):
        calls.append(rec["receptor_id"])
        if len(calls) == 2:
            raise exc
        return _fake_ds(rec, g, settings), {"trajectories_s": 0.0, "footprint_s": 0.0}
    return fake, calls


def test_hysplit_failure_is_a_failure_row(tmp_path, met, monkeypatch):
    fake, calls = _failing_on_second(RuntimeError("HYSPLIT: no more meteorology"))
    monkeypatch.setattr(sd, "run_receptor", fake)
    s, out = _run(tmp_path, met)
    fails = pd.read_csv(sd.failures_path(out))
    assert (s["n_done"], s["n_failed"], len(fails)) == (2, 1, 1)
    assert fails.error[0] == "RuntimeError: HYSPLIT: no more meteorology"


@pytest.mark.parametrize("exc, cause, advice", [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device", "free space"),
    (PermissionError(errno.EACCES, "Permission denied", "/x/run/PARTICLE.DAT"),
     "Permission denied", "fix the permissions"),
    (OSError(errno.EROFS, "Read-only file system"), "Read-only file system", "read-only"),
    # HYSPLIT reports the disk only in its log text (pystilt passes it on in the message)
    (RuntimeError("HYSPLIT: forrtl: No space left on device, unit 10"), "No space left on device",
     "free space"),
])
def test_io_fault_during_hysplit_stops_the_job(tmp_path, met, monkeypatch, exc, cause, advice):
    fake, calls = _failing_on_second(exc)
    monkeypatch.setattr(sd, "run_receptor", fake)
    with pytest.raises(FileIOError) as ei:
        _run(tmp_path, met)
    msg = str(ei.value)
    assert cause in msg and advice in msg and "YXU_202501020530_50" in msg
    assert "re-run the same command" in msg
    out = tmp_path / "fp" / "YXU" / "20250102.nc"
    # nothing recorded as a HYSPLIT failure, no site-day file; the first receptor stays cached
    assert not out.exists() and not sd.failures_path(out).exists()
    assert [p.name for p in (tmp_path / "fp" / "work" / "YXU").glob("*.nc")] == \
        ["YXU_202501020430_50.nc"]
    # after the fault is fixed, the same call finishes with every receptor and no failure row
    monkeypatch.setattr(sd, "run_receptor", lambda rec, m, g, st, w: (
        _fake_ds(rec, g, st), {"trajectories_s": 0.0, "footprint_s": 0.0}))
    s, _ = _run(tmp_path, met)
    assert (s["n_done"], s["n_failed"], s["n_computed"]) == (3, 0, 2)
    assert len(pd.read_csv(sd.failures_path(out))) == 0


def test_unreadable_met_is_named(tmp_path, met, monkeypatch):
    def deny(path, chunk=0):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(sd, "_blake2b_file", deny)
    monkeypatch.setattr(sd, "_MET_SUMS", {})
    monkeypatch.setattr(sd, "run_receptor", lambda *a: pytest.fail("HYSPLIT must not run"))
    with pytest.raises(FileIOError, match=r"cannot read met file .*20250102_gz.arl: \[Errno 13\] "
                                          r"Permission denied.*make the file readable"):
        _run(tmp_path, met)


def test_temporary_names_are_unique_per_writer(tmp_path):
    """Two writers of one file (two runs sharing a results directory) do not collide."""
    target = tmp_path / "out.csv"
    names = {temp_name(target).name for _ in range(50)}
    assert len(names) == 50 and all(n.startswith(f".out.csv.{os.getpid()}-") and
                                    n.endswith(".partial") for n in names)

    def outer(p):
        Path(p).write_text("outer")
        atomic_write(target, lambda q: Path(q).write_text("inner"))  # the other run, meanwhile
        assert Path(p).read_text() == "outer"  # our temporary file was not touched
    atomic_write(target, outer)
    assert target.read_text() == "outer"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_other_errors_pass_through_and_leave_no_temporary(tmp_path):
    def bad(p):
        Path(p).write_text("half")
        raise ValueError("encoding: unknown dtype")
    with pytest.raises(ValueError, match="unknown dtype"):
        atomic_write(tmp_path / "x.nc", bad)
    assert list(tmp_path.iterdir()) == []


def test_truncated_or_corrupt_jacobian_is_named(tmp_path):
    from transport.jacobian import JacobianFileError, load_jacobian, save_jacobian

    grid = dict(lon_min=113.0, lon_max=113.1, lat_min=23.0, lat_max=23.1, res=0.05)
    hours = pd.date_range("2025-01-02", periods=3, freq="h")
    rec = _receptors()
    rng = np.random.default_rng(0)
    H = sp.random(3, 3 * 4, density=0.5, random_state=rng, format="csr")
    p = save_jacobian(tmp_path / "jacobian_hourly.npz", H, rec, hours, grid)
    assert np.allclose(load_jacobian(p).H.toarray(), H.toarray())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # truncated (killed copy, full disk)
    with pytest.raises(JacobianFileError) as ei:
        load_jacobian(p)
    msg = str(ei.value)
    assert str(p) in msg and "truncated or corrupt" in msg and "--forcerun jacobian" in msg
    # flipped bytes inside a member: the CRC check catches it on load, not later in the inversion
    bad = bytearray(data)
    i = data.index(b"data.npy") + 200
    bad[i:i + 16] = bytes(16)
    p.write_bytes(bytes(bad))
    with pytest.raises(JacobianFileError, match="truncated or corrupt"):
        load_jacobian(p)


# --------------------------------------------------------------------------------------------------
# a real full / read-only disk: tmpfs in a private mount namespace
# --------------------------------------------------------------------------------------------------
SCRIPT = textwrap.dedent(r'''
    import errno, json, os, sys
    from pathlib import Path
    import numpy as np, pandas as pd, xarray as xr
    sys.path[:0] = [sys.argv[3], sys.argv[2]]  # this checkout's packages, then the test module
    import transport.stilt_driver as sd
    from gzcarbon.atomic import FileIOError
    from test_io_faults import GRID, FMT, _fake_ds, _receptors

    disk = Path(sys.argv[1])
    res = {}
    met = disk / "met" / "20250102_gz.arl"
    met.parent.mkdir()
    met.write_bytes(b"\1" * 1000)
    filler = disk / "filler"

    def fill(leave=0):
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(filler, "ab") as fh:
            fh.write(b"\0" * max(free - leave, 0))

    def run(name):
        out = disk / name / "YXU" / "20250102.nc"
        try:
            s = sd.run_site_day(_receptors(), [met], GRID, sd.StiltSettings(n_hours=3), out,
                                disk / name / "work" / "YXU", met_file_format=FMT, check_met=False)
            return {"ok": s}
        except Exception as exc:
            return {"type": type(exc).__name__, "errno": getattr(exc, "errno", None),
                    "msg": str(exc), "failures_csv": sd.failures_path(out).exists(),
                    "site_day": out.exists(),
                    "partials": sorted(p.name for p in disk.rglob("*.partial"))}

    # 1. HYSPLIT (pystilt) fails because the disk is full; its message does not say so
    import stilt
    from stilt.exceptions import SimulationError
    def hysplit(receptor, met, workdir, **kw):
        with open(Path(workdir) / "PARTICLE.DAT", "wb") as fh:
            try:
                fh.write(b"\0" * (2 << 20)); fh.flush(); os.fsync(fh.fileno())
            except OSError:
                pass
        raise SimulationError("HYSPLIT wrote no particles")
    stilt.run_trajectories = hysplit
    fill(leave=512 << 10)
    res["hysplit_disk_full"] = run("a")
    filler.unlink()

    # 2. the cache file write fails: the disk fills up while the receptor runs
    def fills_disk(rec, m, g, st, w):
        fill()
        return _fake_ds(rec, g, st), {"trajectories_s": 0.0, "footprint_s": 0.0}
    sd.run_receptor = fills_disk
    res["cache_disk_full"] = run("b")
    filler.unlink()

    # 3. the prior: netCDF4 said PermissionError on a full disk
    from inversion.inventory import write_netcdf_atomic
    fill()
    try:
        write_netcdf_atomic(xr.Dataset({"flux": ("x", np.zeros(50000))}), disk / "prior.nc")
        res["prior"] = {"ok": True}
    except Exception as exc:
        res["prior"] = {"type": type(exc).__name__, "errno": exc.errno, "msg": str(exc)}
    filler.unlink()

    # 4. after freeing space the same call completes (HYSPLIT faked as working)
    sd.run_receptor = lambda rec, m, g, st, w: (_fake_ds(rec, g, st),
                                                {"trajectories_s": 0.0, "footprint_s": 0.0})
    res["after_freeing"] = run("b")
    print(json.dumps(res))
''')

RO_SCRIPT = textwrap.dedent(r'''
    import json, sys
    from pathlib import Path
    sys.path[:0] = [sys.argv[3], sys.argv[2]]  # this checkout's packages, then the test module
    import transport.stilt_driver as sd
    from test_io_faults import GRID, FMT, _fake_ds, _receptors
    disk = Path(sys.argv[1])
    sd.run_receptor = lambda rec, m, g, st, w: (_fake_ds(rec, g, st),
                                                {"trajectories_s": 0.0, "footprint_s": 0.0})
    out = disk / "fp" / "YXU" / "20250102.nc"
    try:
        sd.run_site_day(_receptors(), [disk / "met" / "20250102_gz.arl"], GRID,
                        sd.StiltSettings(n_hours=3), out, disk / "fp" / "work" / "YXU",
                        met_file_format=FMT, check_met=False)
        print(json.dumps({"ok": True}))
    except Exception as exc:
        print(json.dumps({"type": type(exc).__name__, "errno": exc.errno, "msg": str(exc)}))
''')


def _unshare_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
                       capture_output=True)
    return r.returncode == 0


needs_tmpfs = pytest.mark.skipif(not _unshare_ok(), reason="cannot mount a tmpfs (unshare -rm)")


def _in_tmpfs(tmp_path, script, size="4m", setup=""):
    disk = tmp_path / "disk"
    disk.mkdir()
    (tmp_path / "s.py").write_text(script)
    cmd = (f"mount -t tmpfs -o size={size} none {disk} && {setup}"
           f"{sys.executable} {tmp_path / 's.py'} {disk} {Path(__file__).parent} {ROOT}")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_tmpfs
def test_full_disk_is_named_not_a_hysplit_failure(tmp_path):
    res = _in_tmpfs(tmp_path, SCRIPT)
    a = res["hysplit_disk_full"]
    assert a["type"] == "FileIOError" and a["errno"] == errno.ENOSPC, a
    assert "No space left on device" in a["msg"] and "free space on the disk" in a["msg"]
    assert "YXU_202501020430_50" in a["msg"]
    assert not a["failures_csv"] and not a["site_day"] and a["partials"] == []
    b = res["cache_disk_full"]
    assert b["type"] == "FileIOError" and b["errno"] == errno.ENOSPC, b
    assert "cannot write" in b["msg"] and "work/YXU/YXU_202501020430_50.nc" in b["msg"]
    assert not b["failures_csv"] and b["partials"] == []
    p = res["prior"]
    assert p["type"] == "FileIOError" and p["errno"] == errno.ENOSPC, p
    assert "prior.nc" in p["msg"] and "No space left on device" in p["msg"]
    assert "Permission denied" not in p["msg"]
    ok = res["after_freeing"]["ok"]
    assert (ok["n_done"], ok["n_failed"]) == (3, 0)


@needs_tmpfs
def test_read_only_results_directory_is_named(tmp_path):
    setup = ("mkdir -p {d}/met && printf 'x%.0s' $(seq 1000) > {d}/met/20250102_gz.arl && "
             "mount -o remount,ro {d} && ").format(d=tmp_path / "disk")
    res = _in_tmpfs(tmp_path, RO_SCRIPT, setup=setup)
    assert res["type"] == "FileIOError" and res["errno"] == errno.EROFS, res
    assert "Read-only file system" in res["msg"] and "re-run the same command" in res["msg"]
