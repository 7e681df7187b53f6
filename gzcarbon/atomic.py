"""Atomic file writing and I/O faults named by their cause (one helper for every stage).

Every product is written to a hidden temporary file beside its final path and renamed at the
end, so a reader never sees a half-written file. The temporary name is unique per process
(``.{name}.{pid}-{random}.partial``): two runs sharing a results directory never write the same
temporary file.

An I/O error (disk full, no permission, read-only file system, quota, I/O error) while writing is
raised as :class:`FileIOError` naming the file, the cause (errno text) and what to do. Some
writers do not report the cause: netCDF4/HDF5 raises ``RuntimeError('NetCDF: HDF error')`` or a
``PermissionError`` on a full disk. So when a write fails, the directory is probed (a 1 MiB file
written and synced beside the temporary file, before that is removed): when the probe fails too,
its errno is the cause. Errors that are not I/O faults (a bad encoding, a bug) are re-raised as
they are.

Part of the core package: imports neither Snakemake nor any stage package; the writers of
transport, inversion and stations use it (products and power may follow).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

#: errno values that mean "the file system refused", never a model or data problem.
IO_FAULT_ERRNOS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EIO: "input/output error",
}

#: the strerror texts of these errnos, to recognise them in messages of tools that only pass text on
#: (HYSPLIT's log, netCDF's ``NetCDF: ...`` messages wrap nothing).
_STRERROR = {os.strerror(e).lower(): e for e in IO_FAULT_ERRNOS}

PROBE_BYTES = 1 << 20


class FileIOError(OSError):
    """An I/O fault on a named file: the message names the file, the cause and what to do.

    ``errno`` is the cause's errno, ``filename`` the file. An ``OSError`` subclass, so callers that
    catch ``OSError`` still catch it.
    """

    def __init__(self, message: str, err: int | None = None, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.errno = err
        self.filename = None if path is None else str(path)

    def __str__(self) -> str:
        return str(self.args[0])


def _advice(err: int | None, directory: Path, reading: bool = False) -> str:
    if reading and err in (errno.EACCES, errno.EPERM):
        return f"make the file readable (permissions of it and of {directory}) and re-run the same command"
    if err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        try:
            free = shutil.disk_usage(directory).free
            where = f" ({free / 1e6:.1f} MB free now)"
        except OSError:
            where = ""
        return (f"free space on the disk holding {directory}{where} and re-run the same command "
                "(finished files are kept; the job starts again)")
    if err in (errno.EACCES, errno.EPERM):
        return (f"fix the permissions of {directory} (or point results_dir/data_dir elsewhere) "
                "and re-run the same command")
    if err == errno.EROFS:
        return (f"{directory} is on a read-only file system: remount it read-write or point "
                "results_dir/data_dir elsewhere, then re-run the same command")
    return "check the disk and re-run the same command"


def io_message(path: str | os.PathLike, err: int | None, detail: str = "",
               action: str = "write") -> str:
    """``cannot write <path>: [Errno 28] No space left on device (disk full); free space ...``."""
    path = Path(path)
    cause = (f"[Errno {err}] {os.strerror(err)} ({IO_FAULT_ERRNOS.get(err, errno.errorcode.get(err, '?'))})"
             if err is not None else "I/O error")
    extra = f" [{detail}]" if detail and os.strerror(err or 0) not in detail else ""
    return f"cannot {action} {path}: {cause}{extra}; {_advice(err, path.parent, action.startswith('read'))}"


def fault_errno(exc: BaseException) -> int | None:
    """The I/O fault errno of an exception (its own errno, or one named in its text), else None."""
    if isinstance(exc, FileIOError):
        return exc.errno
    err = getattr(exc, "errno", None)
    if isinstance(err, int) and err in IO_FAULT_ERRNOS:
        return err
    text = f"{exc} {getattr(exc, 'log', '')}".lower()
    for s, e in _STRERROR.items():
        if s in text:
            return e
    return None


def probe_writable(directory: str | os.PathLike, nbytes: int = PROBE_BYTES) -> int | None:
    """Write and sync ``nbytes`` in ``directory``; the errno of an I/O fault, else None."""
    directory = Path(directory)
    probe = directory / f".probe.{os.getpid()}-{secrets.token_hex(3)}.partial"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * nbytes)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        return e.errno if e.errno in IO_FAULT_ERRNOS else None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return None


def diagnose(exc: BaseException, directory: str | os.PathLike) -> int | None:
    """The errno of the I/O fault behind ``exc`` (raised while writing in ``directory``), or None.

    A probe write in ``directory`` first (call it before removing what the failed write left, or
    the space it took is free again): its errno is the state of the file system now, and writers
    misreport it (netCDF4 raises ``PermissionError: [Errno 13]`` when HDF5 cannot create a file on
    a full disk). When the probe succeeds, the exception's own errno or text (a large write can
    fail for lack of space while 1 MiB still fits)."""
    if isinstance(exc, FileIOError):
        return exc.errno
    err = probe_writable(directory)
    if err is not None:
        return err
    return fault_errno(exc)


def tmp_path(path: str | os.PathLike) -> Path:
    """A hidden temporary name beside ``path``, unique per process and call."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.partial")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a unique hidden temporary file beside ``path``, then rename it to ``path``.

    The directory is created. An I/O fault raises :class:`FileIOError` naming ``path`` and the cause
    (see module docstring); the temporary file is removed on any error.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = fault_errno(exc)
        if err is None:
            raise
        raise FileIOError(io_message(path, err, str(exc), "create the directory of"), err,
                          path) from exc
    tmp = tmp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        err = diagnose(exc, path.parent) if isinstance(exc, Exception) else None
        try:
            tmp.unlink()
        except OSError:
            pass
        if err is None:
            raise
        own = getattr(exc, "errno", None)
        # the writer's own words only when they do not contradict the cause found (netCDF4 says
        # "Permission denied" for a full disk); the original stays chained (``__cause__``)
        detail = f"{type(exc).__name__}: {exc}" if own in (None, err) else ""
        raise FileIOError(io_message(path, err, detail), err, path) from exc
    return path


def write_netcdf(ds, path: str | os.PathLike, encoding: dict | None = None, **kwargs) -> Path:
    """``ds.to_netcdf`` through :func:`atomic_write`."""
    return atomic_write(path, lambda p: ds.to_netcdf(p, encoding=dict(encoding or {}), **kwargs))


def write_csv(df, path: str | os.PathLike, **kwargs) -> Path:
    """``df.to_csv`` through :func:`atomic_write` (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    return atomic_write(path, lambda p: df.to_csv(p, **kwargs))


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Text through :func:`atomic_write`."""
    return atomic_write(path, lambda p: Path(p).write_text(text, encoding=encoding))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Bytes through :func:`atomic_write`."""
    return atomic_write(path, lambda p: Path(p).write_bytes(data))


def read_fault(path: str | os.PathLike, exc: BaseException, what: str = "file") -> FileIOError | None:
    """A :class:`FileIOError` for an I/O fault while reading ``path`` (None for other errors)."""
    err = fault_errno(exc)
    if err is None:
        return None
    return FileIOError(io_message(path, err, f"{type(exc).__name__}: {exc}", f"read {what}"),
                       err, path)
