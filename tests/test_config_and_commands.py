"""Configuration, run-level safety and the documented commands (issue 13 items 3, 8-12).

Each test here failed on the code before the fix it names:
- nested ``--config`` values arrived as strings and were refused (README's own example);
- a trailing slash in ``results_dir``; ``select_hours_local`` wrapping midnight refused;
- duplicate or unsafe site ids in stations.yaml accepted;
- ``months:`` of a config file silently overrode ``--config month=…``;
- two runs sharing a results directory from two working directories ran into each other;
- the log of a failed job was empty;
- raw files arriving late (also in a sub-folder) or corrected in place were not picked up;
- every ``snakemake`` command that README.md and docs/*.md show is dry-run here as written.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pipeline_conftest import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _validated(cfg: dict) -> dict:
    from gzcarbon.config import validate_config
    return validate_config(cfg)


def _dry_run(workdir: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                           "--cores", "1", "--dry-run", *args], capture_output=True, text=True,
                          cwd=cwd or workdir, timeout=600)


# --------------------------------------------------------------------------- config values
def test_nested_config_values_take_the_schema_type():
    """`--config demo='{"days": 7}'` reaches the config as {"days": "7"} with Snakemake 9."""
    cfg = _validated({"demo": {"days": "7", "enabled": "true"},
                      "stations": {"select_hours_local": ["12", "16"]},
                      "inversion": {"obs_sigma_ppm": "1.5"}})
    assert {k: cfg["demo"][k] for k in ("days", "enabled", "seed")} == \
        {"days": 7, "enabled": True, "seed": 20250101}
    assert cfg["stations"]["select_hours_local"] == [12, 16]
    assert cfg["inversion"]["obs_sigma_ppm"] == 1.5
    # a string that is not a number is still an error naming the key
    from gzcarbon.config import ConfigError
    with pytest.raises(ConfigError, match=r"config key 'demo.days'.*'seven' is not of type 'integer'"):
        _validated({"demo": {"days": "seven"}})
    # a key typed string keeps a numeric-looking value as a string
    assert _validated({"month": "2025-02"})["month"] == "2025-02"


def test_readme_nested_config_example_dry_runs(tmp_path):
    proc = _dry_run(tmp_path / "w", "--config", 'demo={"days": 7}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    # seven days of footprints of the first site: the value arrived as the integer 7
    assert "footprints/NST/20250107.nc" in proc.stdout + proc.stderr


def test_trailing_slash_in_results_dir(tmp_path):
    assert _validated({"results_dir": "out/", "data_dir": "d//"})["results_dir"] == "out"
    proc = _dry_run(tmp_path / "w", "--config", "results_dir=out/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "out/2025-01/report.html" in proc.stdout + proc.stderr


def test_selection_window_may_wrap_midnight():
    from gzcarbon.config import ConfigError
    from transport.receptors import schedule

    cfg = _validated({"stations": {"select_hours_local": [22, 6]}})
    assert cfg["stations"]["select_hours_local"] == [22, 6]
    with pytest.raises(ConfigError, match="select_hours_local"):
        _validated({"stations": {"select_hours_local": [5, 5]}})
    site = {"id": "NST", "lon": 113.6, "lat": 22.6, "elevation": 5, "inlets": [{"height": 220.0}]}
    rec = schedule([site], ["20250101", "20250102"], (22, 6), utc_offset=8)
    local = (rec["time"] - __import__("pandas").Timedelta(minutes=30)
             + __import__("pandas").Timedelta(hours=8)).dt.hour
    assert len(rec) == 16                       # 8 hours per UTC day, 2 days
    assert sorted(set(local)) == [0, 1, 2, 3, 4, 5, 22, 23]
    day = schedule([site], ["20250101"], (12, 16), utc_offset=8)
    assert len(day) == 4


# --------------------------------------------------------------------------- stations.yaml
def _stations_with(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load((ROOT / "config" / "stations.yaml").read_text())
    edit(doc["sites"])
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda sites: sites.append(dict(sites[1])), r"site id 'YXU' appears twice \(entries 2 and 7"),
    (lambda sites: sites[0].update(id="ns/t"), r"site id 'ns/t' .* capital letters and digits"),
], ids=["duplicate", "unsafe"])
def test_bad_site_ids_stop_the_run(tmp_path, edit, message):
    from stations.sites import load_sites

    path = _stations_with(tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        load_sites(path)
    proc = _dry_run(tmp_path / "w", "--config", f"stations_file={path}")
    assert proc.returncode != 0
    assert re.search(message, proc.stderr), proc.stderr[-2000:]


# --------------------------------------------------------------------------- month / months
def test_command_line_month_wins_over_months_of_a_config_file(tmp_path):
    cfg = tmp_path / "ops.yaml"
    cfg.write_text('months: ["2025-03"]\n')
    proc = _dry_run(tmp_path / "w", "--configfile", str(cfg), "--config", "month=2025-02")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "results/2025-02/report.html" in out and "results/2025-03" not in out
    assert "month=2025-02 from the command line replaces months ['2025-03']" in out
    # without a command-line month, the file's months list is what runs
    proc = _dry_run(tmp_path / "w2", "--configfile", str(cfg))
    out = proc.stdout + proc.stderr
    assert "results/2025-03/report.html" in out and "results/2025-01" not in out


# --------------------------------------------------------------------------- run lock
_HOLD = textwrap.dedent("""
    import sys, time
    from gzcarbon.locks import acquire_run_lock
    acquire_run_lock(sys.argv[1])
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_run_lock_is_exclusive_across_processes_and_released_on_exit(tmp_path):
    from gzcarbon.locks import RunLockError, acquire_run_lock

    res = tmp_path / "results"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(res), "30"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        probe = subprocess.run([sys.executable, "-c", _HOLD, str(res), "0"], capture_output=True,
                               text=True)
        assert probe.returncode != 0
        assert f"pid {holder.pid}" in probe.stderr and "is in use by another run" in probe.stderr
    finally:
        holder.kill()
        holder.wait()
    # killed holder: the kernel released the lock; this process can take it
    assert acquire_run_lock(res).name == ".gzcarbon.lock"
    with pytest.raises(RunLockError):  # and now a child cannot
        out = subprocess.run([sys.executable, "-c", _HOLD, str(res), "0"], capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise RunLockError(out.stderr)


def test_second_run_on_a_shared_results_dir_stops_before_any_job(tmp_path):
    """Two working directories, one results directory: the second run exits non-zero, names the
    first, and writes nothing."""
    shared = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(shared / "results"), "120"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        work = tmp_path / "w2"
        work.mkdir()
        proc = subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work),
                               "--cores", "1", "--config", f"results_dir={shared / 'results'}",
                               f"data_dir={shared / 'data'}"],
                              capture_output=True, text=True, timeout=600)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    assert "is in use by another run" in proc.stderr and f"pid {holder.pid}" in proc.stderr
    written = [p for p in (shared / "results").rglob("*") if p.name != ".gzcarbon.lock"]
    assert written == [] and not (shared / "data" / "demo").exists()


# --------------------------------------------------------------------------- failed job's log
def test_failed_script_writes_its_error_to_its_log(tmp_path):
    log = tmp_path / "logs" / "job.log"
    code = textwrap.dedent(f"""
        import logging
        from gzcarbon.logs import script_logging
        script_logging({str(log)!r})
        logging.getLogger("x").info("started")
        raise ValueError("raw.dat: line 3: bad field CO2_dry; export the DataLog_User files")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "bad field CO2_dry" in proc.stderr          # still on stderr for Snakemake
    lines = log.read_text().strip().splitlines()
    assert "started" in lines[0]
    assert lines[-1] == ("ERROR (job failed): ValueError: raw.dat: line 3: bad field CO2_dry; "
                         "export the DataLog_User files")


# --------------------------------------------------------------------------- raw data arriving
def _real_data_config(tmp_path: Path, raw_dir: Path) -> Path:
    """A non-demo config whose hourly_obs inputs are real files (the other inputs only exist)."""
    dummy = tmp_path / "dummy"
    dummy.mkdir()
    for name in ("inventory.nc", "gen.csv", "load.csv"):
        (dummy / name).write_text("")
    cfg = {"demo": {"enabled": False}, "sites": ["NST"],
           "inputs": {"met_dir": str(dummy), "raw_obs_dir": str(raw_dir),
                      "inventory": str(dummy / "inventory.nc"),
                      "power_generation": str(dummy / "gen.csv"),
                      "power_load": str(dummy / "load.csv")}}
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _hourly_job_planned(work: Path, cfg: Path, target: str) -> bool:
    proc = _dry_run(work, target, "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return "rule hourly_obs:" in proc.stdout + proc.stderr


def test_late_and_corrected_raw_files_rerun_the_site(tmp_path):
    from stations.sites import get_site
    from gzcarbon.demo.stations import proxy_truth, write_demo_raw

    site = get_site(ROOT / "config" / "stations.yaml", "NST")
    days = tmp_path / "all_days"
    write_demo_raw(proxy_truth([site], days=3, start="2024-12-31"), site, days, seed=1)
    files = sorted(p for p in days.rglob("*") if p.is_file())
    assert len(files) >= 3
    raw = tmp_path / "raw"
    (raw / "NST").mkdir(parents=True)
    first = files[: len(files) // 2]
    late = files[len(files) // 2:]
    for f in first:
        (raw / "NST" / f.name).write_bytes(f.read_bytes())
    cfg = _real_data_config(tmp_path, raw)
    work = tmp_path / "w"
    target = "results/2025-01/obs/hourly/NST"
    proc = subprocess.run([*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work),
                           "--cores", "1", target, "--configfile", str(cfg)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _hourly_job_planned(work, cfg, target)        # up to date
    # the rest arrives late, in a sub-folder
    (raw / "NST" / "late").mkdir()
    for f in late:
        (raw / "NST" / "late" / f.name).write_bytes(f.read_bytes())
    assert _hourly_job_planned(work, cfg, target)
    for f in late:                                          # back to the first state
        (raw / "NST" / "late" / f.name).unlink()
    (raw / "NST" / "late").rmdir()
    # the same set of files again: up to date (mtimes of the inputs are older than the output)
    assert not _hourly_job_planned(work, cfg, target)
    # a file corrected in place: one digit of its last record changes (Snakemake compares the
    # checksum of an input whose mtime changed, so rewriting identical bytes is rightly no rerun)
    time.sleep(1.1)
    corrected = raw / "NST" / first[0].name
    data = bytearray(corrected.read_bytes())
    i = max(k for k in range(len(data)) if chr(data[k]).isdigit())
    data[i] = ord("1") if data[i] != ord("1") else ord("2")
    corrected.write_bytes(bytes(data))
    assert _hourly_job_planned(work, cfg, target)


# --------------------------------------------------------------------------- documented commands
_PLACEHOLDERS = {"<partition>": "main", "<account>": "gz", "<month>": "2025-01"}


def doc_commands() -> list[tuple[str, str]]:
    """Every `snakemake …` command in a code block or code span of README.md, config/README.md
    and docs/*.md: (file, command)."""
    out = []
    docs = [ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for md in docs:
        text = md.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        blocks += ["\n".join(line[4:] for line in m.group(0).splitlines())
                   for m in re.finditer(r"(?:^    \S.*\n)+", re.sub(r"```.*?```", "", text, flags=re.S),
                                        re.M)]
        spans = re.findall(r"`(snakemake [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        lines = [ln for b in blocks for ln in re.sub(r"\\\n\s*", " ", b).splitlines()] + spans
        for line in lines:
            line = line.strip().lstrip("$ ").split(" # ")[0].rstrip()
            for part in line.split("&&"):
                part = re.sub(r"^(nice -n \d+ )", "", part.strip())
                if part.startswith("snakemake ") or part == "snakemake":
                    out.append((md.relative_to(ROOT).as_posix(), part))
    return sorted(set(out))


def test_the_docs_show_commands():
    cmds = [c for _, c in doc_commands()]
    assert "snakemake --cores 2" in cmds
    assert """snakemake --cores 2 --config demo='{"days": 7}'""" in cmds
    assert len(cmds) >= 10


def _command_params():
    """`--report` needs a finished run: those commands run (slow) in a copy of the tiny run."""
    return [pytest.param(w, c, marks=pytest.mark.slow) if "--report" in c else pytest.param(w, c)
            for w, c in doc_commands()]


@pytest.mark.parametrize("where, command", _command_params())
def test_documented_command_works_as_written(tmp_path, request, where, command):
    """Dry-run of the command from the repository root (results go to a scratch directory).

    Placeholders (<partition>, <account>, <month>) get a value; a config file the docs name
    as the user's own (my.yaml, my_network.yaml) is an empty file; `--report` needs a finished run
    is only checked to parse (with the dry-run flag it does nothing else).
    """
    for k, v in _PLACEHOLDERS.items():
        command = command.replace(k, v)
    command = re.split(r"\s\d*>", command)[0]   # a crontab line's redirection of its log
    if "$(" in command:  # bash expands $(date …); each word as bash would pass it
        args = subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True,
                              text=True, check=True).stdout.split("\0")[:-1]
    else:
        args = shlex.split(command)
    assert args[0] == "snakemake"
    for i in range(1, len(args)):
        if args[i - 1] == "--configfile" and not (ROOT / args[i]).exists():
            user_cfg = tmp_path / Path(args[i]).name     # the user's own file
            user_cfg.write_text("{}\n")
            args[i] = str(user_cfg)
    extra = [] if "--directory" in args else ["--directory", str(tmp_path / "w")]
    if "--report" in args:  # after a run, as docs/report.md says: in a copy of the tiny run
        from pipeline_conftest import copy_run, tiny_config
        run = copy_run(request.getfixturevalue("tiny_reference_run"), tmp_path / "run")
        proc = subprocess.run([*SNAKEMAKE, *args[1:], "--directory", str(run), "--configfile",
                               str(tiny_config(run))], capture_output=True, text=True, cwd=ROOT,
                              timeout=600)
        assert proc.returncode == 0, f"{where}: {command}\n{proc.stderr[-3000:]}"
        target = next((a for a in args[1:] if a.endswith(".html")), "report.html")
        assert (run / target).stat().st_size > 10_000
        return
    if "--lint" in args:  # README: one remark is left, on every rule (no per-rule conda env)
        proc = subprocess.run([*SNAKEMAKE, *args[1:], *extra], capture_output=True, text=True,
                              cwd=ROOT, timeout=600)
        remarks = set(re.findall(r"^\s+\* (.+?):?$", proc.stdout + proc.stderr, re.M))
        assert remarks == {"Specify a conda environment or container for each rule."}, remarks
        return
    proc = subprocess.run([*SNAKEMAKE, *args[1:], *extra, "--dry-run"], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"{where}: {command}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
