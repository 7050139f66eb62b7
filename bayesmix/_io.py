"""Atomic writes: a file or directory appears whole or not at all, with the umask's mode.

Temporary files and directories (``tempfile.mkstemp`` gives mode 0600, ``mkdtemp``
0700) get the mode a plain ``open`` or ``mkdir`` would have given under the user's
umask before they are renamed into place, so a fit directory on a shared machine is
as readable as anything else the user writes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bayesmix._errors import BayesmixError

__all__ = ["OWN_FILES", "atomic_dir", "atomic_file", "check_outputs", "current_umask"]


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting it to 0
    and restoring it at once (the only portable way).
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _apply_umask_to_tree(root: Path, umask: int) -> None:
    """Give ``root`` and every directory below it mode ``0o777 & ~umask``.

    Files are left as they are: the ones written inside follow the umask already
    (plain ``open``, or :func:`atomic_file`), and copied ones keep their own mode.
    """
    mode = 0o777 & ~umask
    os.chmod(root, mode)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, mode)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    The file gets mode ``0o666 & ~umask`` before the rename. On any error (or
    ``KeyboardInterrupt``) the temporary file is removed and ``path`` is left as it
    was.
    """
    path = _absolute(path)
    with _writing(path):
        if path.is_dir():
            raise BayesmixError(f"{path} is a directory; give the name of a file to write")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` on success.

    Files already in ``path`` that the new content does not replace are kept (they
    are copied into the new directory first), so a user's own files there survive.
    Before the rename the directory and its subdirectories get mode
    ``0o777 & ~umask``. On error the temporary directory is removed and ``path`` is
    untouched.
    """
    path = _absolute(path)
    with _writing(path):
        if path.exists() and not path.is_dir():
            raise BayesmixError(f"{path} is a file, not a directory; give a new or an "
                                f"output directory's name")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        if path.is_dir():
            shutil.copytree(path, tmp, dirs_exist_ok=True)
        yield tmp
        _apply_umask_to_tree(tmp, current_umask())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OS error while making room for ``path`` as a one-line :class:`BayesmixError`."""
    try:
        yield
    except OSError as exc:
        raise BayesmixError(f"cannot write {path}: {exc.strerror or exc}") from None


OWN_FILES = ("fit.json", "baseline.json", "optimum.json", "suggestion.json")
"""Files of bayesmix's output directories that its commands read back (with the
netCDFs a ``fit.json`` names): never written over by another command's output."""


def _absolute(path: Any) -> Path:
    """``path`` made absolute without following links (where the writer will write)."""
    return Path(os.path.abspath(path))


def check_outputs(outputs: dict[str, tuple[Any, bool, tuple[str, ...]]],
                  inputs: list[Any]) -> None:
    """Refuse, before any work, outputs that cannot be written or would destroy input.

    Parameters
    ----------
    outputs : dict of option -> (path, is_directory, names)
        Where a command will write (``None`` paths are skipped); a directory output
        also names the files the command writes into it.
    inputs : list of path
        What it reads (files and directories; ones that do not exist are skipped).

    Raises
    ------
    BayesmixError
        An output that is a file where a directory goes or the reverse; a file it
        writes that is one of the inputs, or a file of an input's output directory
        (:data:`OWN_FILES`, a netCDF); a directory output that is the working directory
        or holds it; or a place that cannot be written (probed by making and removing
        an empty directory there).
    """
    for option, (path, is_dir, names) in outputs.items():
        if path is None:
            continue
        out = Path(path)
        with _writing(out):
            sources = [Path(p).resolve() for p in inputs if p is not None and Path(p).exists()]
            if is_dir and out.exists() and not out.is_dir():
                raise BayesmixError(f"{option} {out} is a file, not a directory; give a new "
                                    f"or an output directory's name")
            if not is_dir and out.is_dir():
                raise BayesmixError(f"{option} {out} is a directory; give the name of a file")
            if is_dir and _absolute(out) in (_absolute("."), *_absolute(".").parents):
                raise BayesmixError(f"{option} {out} holds the working directory; give a "
                                    f"directory below it")
            for written in ([out / n for n in names] if is_dir else [out]):
                target = written.resolve()
                for source in sources:
                    # an output directory's file that another command reads back
                    # (this command's own outputs are its to replace)
                    own = source.is_dir() and target.parent == source and (
                        target.suffix == ".nc"
                        or (target.name in OWN_FILES and target.name not in names))
                    if target == source or own:
                        raise BayesmixError(f"{option} {out} would overwrite {target}, which "
                                            f"this command reads; give another name")
            ancestor = _absolute(out).parent  # where the temporary file or directory goes
            while not ancestor.exists():
                ancestor = ancestor.parent
            if not ancestor.is_dir():
                raise NotADirectoryError(20, f"{ancestor} is not a directory")
            os.rmdir(tempfile.mkdtemp(prefix=".bayesmix-probe-", dir=ancestor))
