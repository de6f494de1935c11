"""Atomic file output: write to a temporary file beside the target, then rename.

A crash, a full disk or a SIGKILL mid-write leaves either the old file or the new one, never a
half-written file under the final name. Every temporary path still open is listed in a registry, so
that a stop signal's handler (``leo-video``'s, in :mod:`leo_video.cli.main`) can remove them all
before the process exits (:func:`remove_live_temps`); only SIGKILL can leave a hidden ``.NAME.tmp-*``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import InputError, LeoError


# Temporary outputs not yet renamed or removed: path -> whether it is a folder. Plain dict operations
# (atomic under the GIL), no lock: the signal handler runs on the main thread, maybe inside a write.
_LIVE_TEMPS: dict[Path, bool] = {}
# Set by remove_live_temps: no output may be committed afterwards, even if the exception that the signal
# handler raises is swallowed (Python ignores exceptions raised inside a generator's finaliser).
_STOP_REQUESTED = [False]


def remove_live_temps() -> int:
    """Delete every temporary output still being written and refuse to commit any later one (from a
    stop-signal handler; :func:`allow_outputs` lifts that); returns how many were removed."""
    _STOP_REQUESTED[0] = True
    removed = 0
    for tmp, is_folder in list(_LIVE_TEMPS.items()):
        _LIVE_TEMPS.pop(tmp, None)
        if is_folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                tmp.unlink()
        removed += 1
    return removed


def allow_outputs() -> None:
    """Commit outputs again (a new command starts: the stop of an earlier one is over)."""
    _STOP_REQUESTED[0] = False


def _check_not_stopped(path: Path) -> None:
    if _STOP_REQUESTED[0]:
        raise InterruptedError(f"{path}: not written (stopped by a signal)")


class OutputExistsError(LeoError):
    """The output path exists and overwriting was not allowed."""


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse to clobber an existing output unless ``overwrite``; make sure the parent folder exists."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    On any exception the temporary file is removed and the target is untouched. ``suffix``
    defaults to the target's own suffix (encoders such as FFmpeg pick the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the target's suffix so that format-sniffing writers still work.
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.tmp-", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    _LIVE_TEMPS[tmp_path] = False
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        _check_not_stopped(path)
        _fsync_file(tmp_path)
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise InputError(f"{path}: no space left on device; nothing was written") from exc
        raise
    finally:
        _LIVE_TEMPS.pop(tmp_path, None)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` in one rename.

    Refuses an existing ``path`` unless ``overwrite`` (:func:`check_output_path`). On any exception
    the temporary folder is removed and ``path`` is untouched, so a crash never leaves a half-written
    export or frame folder under the final name.
    """
    path = check_output_path(path, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    _LIVE_TEMPS[tmp] = True
    try:
        yield tmp
        _check_not_stopped(path)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            raise InputError(f"{path}: no space left on device; nothing was written") from exc
        raise
    finally:
        _LIVE_TEMPS.pop(tmp, None)


def save_pretrained_atomic(model, folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """``model.save_pretrained`` (config.json + safetensors) into ``folder`` through :func:`atomic_folder`."""
    with atomic_folder(folder, overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return Path(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ENOSPC/EDQUOT (disk full, over quota) is anywhere in the exception chain (torch,
    safetensors and FFmpeg wrappers re-raise write errors as other exceptions)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
