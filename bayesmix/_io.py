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

__all__ = ["atomic_dir", "atomic_file", "current_umask"]


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
    path = Path(path)
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
    path = Path(path)
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
