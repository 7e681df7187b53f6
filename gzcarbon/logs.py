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
"""
from __future__ import annotations

import logging
import os
import re
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
        if not issubclass(exc_type, KeyboardInterrupt):
            try:
                with open(log_path, "a") as fh:
                    fh.write("".join(traceback.format_exception(exc_type, exc, tb)))
                    fh.write(f"\nERROR (job failed): {exc_type.__name__}: {exc}\n")
            except OSError:  # the log itself cannot be written (disk full): stderr still has it
                pass
        previous(exc_type, exc, tb)

    sys.excepthook = _hook
    return logging.getLogger()


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
