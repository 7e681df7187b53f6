"""Logging of the pipeline's rule scripts, and progress of long loops on the terminal.

Every rule script writes its log file (``logs/<month>/<rule>….log``). Without this module an
uncaught exception went to the job's stderr only and the log file stayed empty, although
docs/failures.md says the message is at the end of the log. :func:`script_logging` sends log
records to the file *and* records any uncaught exception there (message last), then lets Python
print it to stderr as usual.

Progress (issue 22.6): a log record whose message starts with ``[i/n]`` is also echoed to the
job's stderr, which Snakemake shows on the terminal (local runs; on SLURM it goes to the job's
SLURM log). The HYSPLIT driver logs one such line per receptor; long loops use :class:`Progress`
(at most one line every ``GZCARBON_PROGRESS_SECONDS`` seconds, default 10, and the last).

Cost (issue 19.5): when the script ends without an error, its last log line is
``job cost: cpu <s> s (user <u> s, system <y> s; children <c> s), wall <w> s, peak rss <r> MB``
(:func:`job_cost`): the CPU of the job's own process *and* of the child processes it waited for
(HYSPLIT), which Snakemake's benchmark ``cpu_time`` misses. ``benchmarks/default_run.py`` reads it.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import resource
import sys
import time
import traceback
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: a progress message: ``[i/n] …``
PROGRESS = re.compile(r"^\[\d+/\d+\]")
#: seconds between two progress lines of one loop (environment variable, default 10)
PROGRESS_SECONDS_ENV = "GZCARBON_PROGRESS_SECONDS"


class _ProgressOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return bool(PROGRESS.match(record.getMessage()))


def progress_handler(label: str, stream=None) -> logging.Handler:
    """A handler writing only ``[i/n]`` records, as ``<label> [i/n] …``, to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(_ProgressOnly())
    handler.setFormatter(logging.Formatter(f"%(asctime)s {label} %(message)s", "%H:%M:%S"))
    handler.set_name("gzcarbon-progress")
    return handler


def script_logging(log_path: str | os.PathLike, level: int = logging.INFO) -> logging.Logger:
    """Log to ``log_path`` and write any uncaught exception there before the script dies;
    progress lines (``[i/n] …``) also go to stderr, prefixed with the log file's name.

    The last line of the log is the error message itself (``ErrorType: message``), so
    ``tail -1 logs/…`` shows what went wrong.
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    logging.basicConfig(filename=str(log_path), level=level, force=True, format=FORMAT)
    logging.getLogger().addHandler(progress_handler(Path(log_path).stem))
    previous = sys.excepthook

    def _hook(exc_type, exc, tb):
        _COST["failed"] = True
        if not issubclass(exc_type, KeyboardInterrupt):
            try:
                with open(log_path, "a") as fh:
                    fh.write("".join(traceback.format_exception(exc_type, exc, tb)))
                    fh.write(f"\nERROR (job failed): {exc_type.__name__}: {exc}\n")
            except OSError:  # the log itself cannot be written (disk full): stderr still has it
                pass
        previous(exc_type, exc, tb)

    sys.excepthook = _hook
    if not _COST["registered"]:
        _COST["registered"] = True
        atexit.register(_log_job_cost)
    return logging.getLogger()


#: ``job cost:`` line of a log (:func:`job_cost`); read back by :func:`parse_job_cost`
COST_LINE = re.compile(r"job cost: cpu (?P<cpu>[0-9.]+) s \(user (?P<user>[0-9.]+) s, system "
                       r"(?P<sys>[0-9.]+) s; children (?P<children>[0-9.]+) s\), wall "
                       r"(?P<wall>[0-9.]+) s, peak rss (?P<rss>[0-9.]+) MB")
_COST = {"registered": False, "failed": False}


def _process_start() -> float:
    """Epoch seconds at which this process started (Linux /proc; else now)."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


_START = _process_start()


def job_cost() -> dict:
    """CPU seconds of this process and of the children it waited for (``resource.getrusage``),
    wall seconds since the process started and the peak resident memory (MB) of the process."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = me.ru_utime + ch.ru_utime, me.ru_stime + ch.ru_stime
    return {"cpu": user + system, "user": user, "sys": system,
            "children": ch.ru_utime + ch.ru_stime, "wall": time.time() - _START,
            "rss": max(me.ru_maxrss, ch.ru_maxrss) / 1024.0}


def format_job_cost(c: dict) -> str:
    return (f"job cost: cpu {c['cpu']:.2f} s (user {c['user']:.2f} s, system {c['sys']:.2f} s; "
            f"children {c['children']:.2f} s), wall {c['wall']:.2f} s, peak rss {c['rss']:.1f} MB")


def parse_job_cost(text: str) -> dict | None:
    """The last ``job cost:`` line of a log's text as floats, or None."""
    found = list(COST_LINE.finditer(text))
    return {k: float(v) for k, v in found[-1].groupdict().items()} if found else None


def _log_job_cost() -> None:
    if _COST["failed"] or getattr(sys, "last_type", None) is not None:
        return  # the job failed: its last line stays the error
    try:
        logging.getLogger("gzcarbon.logs").info(format_job_cost(job_cost()))
    except Exception:  # noqa: BLE001 - a cost line must never fail a finished job
        pass


def _default_interval() -> float:
    try:
        return float(os.environ.get(PROGRESS_SECONDS_ENV, "10"))
    except ValueError:
        return 10.0


class Progress:
    """Periodic counts of a long loop: ``[i/n] <what>: <detail>, <s> s`` at INFO.

    ``step(i, detail)`` after the i-th of ``total`` items (1-based) logs when ``every_seconds``
    have passed since the start or the last line (default ``$GZCARBON_PROGRESS_SECONDS`` or 10 s;
    0: every item), and the last item once a line was logged: a loop shorter than the interval
    stays quiet, a long one shows its counts and its end. Under :func:`script_logging` the lines
    also reach the terminal."""

    def __init__(self, logger: logging.Logger, total: int, what: str, every_seconds: float | None = None):
        self.logger, self.total, self.what = logger, int(total), what
        self.every = _default_interval() if every_seconds is None else float(every_seconds)
        self.start = self.last = time.monotonic()
        self.lines = 0

    def step(self, i: int, detail: str = "") -> None:
        now = time.monotonic()
        if now - self.last >= self.every or (i == self.total and self.lines):
            self.last = now
            self.lines += 1
            self.logger.info("[%d/%d] %s%s, %.1f s", i, self.total, self.what,
                             f": {detail}" if detail else "", now - self.start)
