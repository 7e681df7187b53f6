"""Logging of the pipeline's rule scripts.

Every rule script writes its log file (``logs/<month>/<rule>….log``). Without this module an
uncaught exception went to the job's stderr only and the log file stayed empty, although
docs/failures.md says the message is at the end of the log. :func:`script_logging` sends log
records to the file *and* records any uncaught exception there (message last), then lets Python
print it to stderr as usual.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def script_logging(log_path: str | os.PathLike, level: int = logging.INFO) -> logging.Logger:
    """Log to ``log_path`` and write any uncaught exception there before the script dies.

    The last line of the log is the error message itself (``ErrorType: message``), so
    ``tail -1 logs/…`` shows what went wrong.
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    logging.basicConfig(filename=str(log_path), level=level, force=True, format=FORMAT)
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
