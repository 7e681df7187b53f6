"""One run at a time per results (and data) directory, across working directories.

Snakemake locks its *working* directory only. Two runs started from different working
directories but writing the same ``results_dir`` (or demo ``data_dir``) used to overwrite each
other's files and crash on each other's temporaries. :func:`acquire_run_lock` takes an exclusive,
non-blocking ``flock`` on ``<dir>/.gzcarbon.lock``; the kernel releases it when the process ends,
however it ends (``kill -9`` included), so a stale lock never blocks a later run.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".gzcarbon.lock"
_HELD: list = []  # open lock files of this process (kept open = lock held)


class RunLockError(RuntimeError):
    """Another run holds the lock of a directory this run writes."""


def acquire_run_lock(directory: str | os.PathLike, what: str = "results directory") -> Path:
    """Hold the run lock of ``directory`` until this process exits.

    Raises :class:`RunLockError` naming the other run (pid, host, working directory, start time)
    when another process holds it. Taking the same directory twice in one process is a no-op.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    for fh in _HELD:
        if Path(fh.name) == path:
            return path
    fh = open(path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise RunLockError(
            f"{what} {directory} is in use by another run ({holder}). Two runs writing the same "
            f"directory would overwrite each other's files. Wait for that run to finish, or give "
            f"this run its own directory (--config results_dir=… data_dir=…). The lock ({path}) is "
            "released automatically when that process ends.") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}, working directory {os.getcwd()}, "
             f"started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
    fh.flush()
    _HELD.append(fh)
    return path
