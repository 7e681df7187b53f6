"""Start and stop a real one-node SLURM cluster on localhost for the slow SLURM test.

Recipe (seen working on Debian bookworm's slurm-wlm 22.05 + munge): write /etc/slurm/slurm.conf
(it must be that path: the jobstep plugin strips SLURM_* variables, so SLURM_CONF alone fails),
start munged if it is not running, then ``slurmctld`` and ``slurmd -N localhost``; wait until
``sinfo`` reports the node idle. On exit the daemons are stopped by the PIDs we recorded (never by
name), munged only if we started it, and any previous /etc/slurm/slurm.conf is restored.

Use :func:`local_slurm` as a context manager, or the ``slurm_cluster`` pytest fixture defined in
tests/test_slurm.py. When the binaries are missing or we are not root the context manager raises
:class:`SlurmUnavailable`, whose message says why (the fixture turns it into ``pytest.skip``).
Install the binaries with ``.ci/install_slurm.sh``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
PARTITION = "debug"
NODE = "localhost"
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


class SlurmUnavailable(RuntimeError):
    """A local SLURM cannot be started here (missing binaries, not root, another cluster...)."""


@dataclass
class LocalSlurm:
    """A running one-node cluster: where its files are and the PIDs of the daemons we started."""

    workdir: Path
    conf: Path
    cpus: int
    real_memory_mb: int
    partition: str = PARTITION
    pids: dict[str, int] = field(default_factory=dict)

    def log(self, name: str) -> str:
        """Text of a daemon log (``slurmctld`` or ``slurmd``), empty if absent."""
        p = self.workdir / "log" / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in SBIN:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def _total_memory_mb() -> int:
    """Total memory in MB as ``free -m`` reports it (falls back to /proc/meminfo)."""
    try:
        out = subprocess.run(["free", "-m"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Mem:"):
                return int(line.split()[1])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        pass
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise SlurmUnavailable("cannot read the total memory (free -m and /proc/meminfo failed)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _pid_of_exe(name: str) -> list[int]:
    """PIDs whose executable base name is exactly ``name`` (read from /proc, no pkill/pgrep)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            comm = (d / "comm").read_text().strip()
        except OSError:
            continue
        if comm == name and _alive(int(d.name)):  # zombies waiting for their reaper do not count
            pids.append(int(d.name))
    return pids


def _read_pidfile(path: Path, timeout: float = 15.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            txt = path.read_text().strip()
            if txt:
                pid = int(txt)
                if _alive(pid):
                    return pid
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SlurmUnavailable(f"daemon did not write a live PID to {path} within {timeout:.0f} s")


def _stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM one PID, wait, then SIGKILL if it is still there."""
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def slurm_conf_text(workdir: Path, cpus: int, real_memory_mb: int, cluster: str = "gzlocal") -> str:
    """slurm.conf of a one-node cluster named ``cluster``; state, spool, PIDs and logs in workdir."""
    w = Path(workdir)
    return "\n".join([
        f"ClusterName={cluster}",
        f"SlurmctldHost={NODE}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        "MpiDefault=none",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        # squeue must still see finished jobs when the executor polls (>= 120 s, see
        # snakemake-executor-plugin-slurm: below that it falls back to sacct, which fails here).
        "MinJobAge=3600",
        "ReturnToService=2",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "KillWait=5",
        f"StateSaveLocation={w / 'state'}",
        f"SlurmdSpoolDir={w / 'spool'}",
        f"SlurmctldPidFile={w / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={w / 'run' / 'slurmd.pid'}",
        f"SlurmctldLogFile={w / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={w / 'log' / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        f"NodeName={NODE} CPUs={cpus} RealMemory={real_memory_mb} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _check_prerequisites() -> dict[str, str]:
    if os.name != "posix" or not hasattr(os, "geteuid"):
        raise SlurmUnavailable("a local SLURM needs Linux")
    if os.geteuid() != 0:
        raise SlurmUnavailable("a local SLURM needs root (it writes /etc/slurm/slurm.conf and runs "
                               "slurmd); run as root or skip this test")
    exes = {n: _which(n) for n in ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue",
                                   "scontrol")}
    missing = [n for n, p in exes.items() if p is None]
    if missing:
        raise SlurmUnavailable(f"SLURM binaries missing: {', '.join(missing)}; install them with "
                               ".ci/install_slurm.sh (apt-get install slurm-wlm munge)")
    for n in ("slurmctld", "slurmd"):
        if _pid_of_exe(n):
            raise SlurmUnavailable(f"a {n} is already running (PIDs {_pid_of_exe(n)}); this test "
                                   "starts its own cluster and will not touch another one")
    return exes  # type: ignore[return-value]


def _start_munge(exes: dict[str, str], workdir: Path) -> int | None:
    """Start munged unless one is running; return its PID if we started it."""
    if _pid_of_exe("munged"):
        return None
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        mungekey = _which("mungekey")
        if mungekey is None:
            raise SlurmUnavailable("no /etc/munge/munge.key and no mungekey to create one")
        subprocess.run(["runuser", "-u", "munge", "--", mungekey, "--create"], check=True,
                       capture_output=True)
    subprocess.run(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"],
                   check=True, capture_output=True)
    before = set(_pid_of_exe("munged"))
    proc = subprocess.run(["runuser", "-u", "munge", "--", exes["munged"]],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SlurmUnavailable(f"munged failed to start: {proc.stderr.strip()}")
    pidfile = Path("/run/munge/munged.pid")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        new = set(_pid_of_exe("munged")) - before
        if new:
            return min(new)
        if pidfile.exists():
            with contextlib.suppress(ValueError, OSError):
                return int(pidfile.read_text().strip())
        time.sleep(0.1)
    raise SlurmUnavailable("munged did not start within 10 s")


def _wait_idle(sinfo: str, timeout: float) -> None:
    t0 = time.monotonic()
    state = ""
    while time.monotonic() - t0 < timeout:
        proc = subprocess.run([sinfo, "-h", "-o", "%T"], capture_output=True, text=True)
        state = (proc.stdout or proc.stderr).strip()
        if proc.returncode == 0 and state == "idle":
            return
        time.sleep(0.3)
    raise SlurmUnavailable(f"the node did not become idle within {timeout:.0f} s (sinfo: {state!r})")


@contextlib.contextmanager
def local_slurm(workdir: Path | str, cpus: int | None = None, memory_fraction: float = 0.9,
                idle_timeout: float = 60.0):
    """Run a one-node SLURM on localhost for the duration of the ``with`` block.

    workdir: scratch folder for state, spool, PID and log files.
    cpus: CPUs of the node (default: ``os.cpu_count()``, i.e. nproc).
    memory_fraction: RealMemory as a fraction of the total memory of ``free -m`` (above the real
    memory the node drains).
    Yields a :class:`LocalSlurm`. Raises :class:`SlurmUnavailable` when it cannot start.
    """
    exes = _check_prerequisites()
    workdir = Path(workdir).resolve()
    for sub in ("state", "spool", "run", "log"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    cpus = int(cpus or os.cpu_count() or 1)
    mem = int(_total_memory_mb() * memory_fraction)
    cluster = LocalSlurm(workdir=workdir, conf=SLURM_CONF, cpus=cpus, real_memory_mb=mem)

    backup = None
    if SLURM_CONF.exists():
        backup = workdir / "slurm.conf.orig"
        shutil.copy2(SLURM_CONF, backup)
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    munge_pid = None
    try:
        SLURM_CONF.write_text(slurm_conf_text(workdir, cpus, mem))
        munge_pid = _start_munge(exes, workdir)
        if munge_pid is not None:
            cluster.pids["munged"] = munge_pid
        # -c: start clean (no saved jobs or node states from an older run).
        proc = subprocess.run([exes["slurmctld"], "-c"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"slurmctld failed: {proc.stderr.strip()}\n"
                                   f"{cluster.log('slurmctld')[-2000:]}")
        cluster.pids["slurmctld"] = _read_pidfile(workdir / "run" / "slurmctld.pid")
        proc = subprocess.run([exes["slurmd"], "-N", NODE], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"slurmd failed: {proc.stderr.strip()}\n"
                                   f"{cluster.log('slurmd')[-2000:]}")
        cluster.pids["slurmd"] = _read_pidfile(workdir / "run" / "slurmd.pid")
        try:
            _wait_idle(exes["sinfo"], idle_timeout)
        except SlurmUnavailable as err:
            raise SlurmUnavailable(f"{err}\nslurmctld.log:\n{cluster.log('slurmctld')[-2000:]}\n"
                                   f"slurmd.log:\n{cluster.log('slurmd')[-2000:]}") from None
        yield cluster
    finally:
        # slurmd first (it may still run job steps), then the controller, then munge if ours.
        for name in ("slurmd", "slurmctld", "munged"):
            if name in cluster.pids:
                _stop(cluster.pids[name])
        if backup is not None:
            shutil.copy2(backup, SLURM_CONF)
        else:
            with contextlib.suppress(FileNotFoundError):
                SLURM_CONF.unlink()


def stopped(cluster: LocalSlurm) -> bool:
    """True when none of the daemons this cluster started is alive."""
    return not any(_alive(pid) for pid in cluster.pids.values())
