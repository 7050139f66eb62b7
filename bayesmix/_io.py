"""Atomic writes that never lose what a user already has.

Every file and directory bayesmix writes goes through this module, by these rules:

- **Whole or not at all.** Output is written under a temporary name beside its target
  (``.NAME.XXXX.tmp``) and renamed into place. On any error or ``KeyboardInterrupt``
  the temporary is removed and the target is left as it was; an output directory that
  had been moved aside (``.NAME.old-XXXX``) is moved back. No temporary or moved-aside
  copy is left behind, even a read-only one.
- **Modes.** What bayesmix creates gets the mode a plain ``open`` or ``mkdir`` would give
  under the user's umask (``0o666 & ~umask``, ``0o777 & ~umask``; ``mkstemp`` alone
  gives 0600 and ``mkdtemp`` 0700, unreadable to a team on a shared machine). What
  already existed keeps its mode, as with ``open``: a replaced file, an existing output
  directory and each of its subdirectories (a user's private 0700 folder stays 0700).
- **The user's entries survive.** Files in an existing output directory that the new
  content does not replace are kept as they were: regular files copied with their mode
  and times, symbolic links (dangling ones too) kept as links, subdirectories with their
  modes, and fifos, sockets and device files hard-linked (the same file, never read).
- **Links are written through.** An output path that is a symbolic link to a file or a
  directory gets the new content at the link's target, and the link stays. A researcher
  who links ``fit -> /scratch/run7/fit`` (or ``preds.csv -> ../shared/preds.csv``) means
  the output to land there; replacing the link by a real directory would leave the old
  content stale where they look for it and break the layout they made on purpose.
- **Refused before any work** (:func:`check_outputs`, which each command calls first, in
  one line): a file where a directory goes or the reverse; an output that is an input
  or a file an input directory holds; the working directory or one holding it; a
  read-only output file, or an existing output directory (or a file the command writes
  into it) that the user cannot write; a link named like a file the command writes
  into its directory (it would be written through in place, not atomically); a special
  file (fifo, device) as an output file; a fit written into a baseline's directory or
  the reverse (the loader could then read only one of them); and a place where nothing
  can be created. :func:`atomic_file` and :func:`atomic_dir` refuse read-only targets
  themselves too, for library callers.

Errors are one-line :class:`~bayesmix._errors.BayesmixError` s naming the path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bayesmix._errors import BayesmixError

__all__ = ["INTERRUPTED", "OWN_FILES", "atomic_dir", "atomic_file", "check_outputs",
           "current_umask"]

INTERRUPTED = threading.Event()
"""Set by the CLI's SIGINT handler. Python drops a ``KeyboardInterrupt`` raised while a
garbage-collection callback runs (JAX registers one), so the command would go on and put
its output in place; the writers check this before they rename anything."""


def _stop_if_interrupted() -> None:
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


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


def _absolute(path: Any) -> Path:
    """``path`` made absolute without following links (the name the user gave)."""
    return Path(os.path.abspath(path))


def _real(path: Any) -> Path:
    """``path`` with every symbolic link followed (where the writer writes)."""
    return Path(os.path.realpath(path))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _problem(real: Path, is_dir: bool) -> str | None:
    """Why an existing ``real`` cannot be replaced by output of its kind (None: it can).

    A read-only file or directory was made so on purpose: replacing it (which needs
    only its parent to be writable) would defeat that.
    """
    if not os.path.lexists(real):
        return None
    if is_dir:
        if not os.access(real, os.W_OK):
            return (f"is read-only (mode {_mode(real):04o}); make it writable or give another "
                    f"directory")
        if not os.access(real, os.R_OK | os.X_OK):
            return f"cannot be read (mode {_mode(real):04o}), so its files cannot be kept"
        return None
    if not stat.S_ISREG(os.stat(real).st_mode):
        return "is not a regular file (a fifo, socket or device); give a file's name"
    if not os.access(real, os.W_OK):
        return f"is read-only (mode {_mode(real):04o}); make it writable or give another name"
    return None


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OS error while writing ``path`` as a one-line :class:`BayesmixError`."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise BayesmixError(f"cannot write {path}: {exc.strerror or exc}{where}") from None


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or Path
        The file to write. A symbolic link is written through: its target gets the
        content and the link stays (see the module docstring for why).
    mode : str
        The ``open`` mode, ``"w"`` or ``"wb"``.

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    BayesmixError
        ``path`` is a directory, a read-only file or a special file, or cannot be
        created; nothing is written then.

    Notes
    -----
    A new file gets mode ``0o666 & ~umask``; a replaced one keeps its mode. On any
    error (or ``KeyboardInterrupt``) the temporary file is removed and ``path`` is left
    as it was.
    """
    shown = _absolute(path)
    with _writing(shown):
        real = _real(shown)
        if real.is_dir():
            raise BayesmixError(f"{shown} is a directory; give the name of a file to write")
        problem = _problem(real, is_dir=False)
        if problem:
            raise BayesmixError(f"{shown} {problem}")
        file_mode = _mode(real) if real.exists() else 0o666 & ~current_umask()
        real.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        _stop_if_interrupted()
        with _writing(shown):
            os.chmod(tmp, file_mode)
            os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` on success.

    Parameters
    ----------
    path : str or Path
        The directory to write. A symbolic link to a directory is written through: the
        link's target is replaced and the link stays.

    Yields
    ------
    Path
        The temporary directory, holding a copy of what ``path`` held (see below); the
        caller writes the new content into it.

    Raises
    ------
    BayesmixError
        ``path`` is a file, a directory the user cannot write or read, or cannot be
        created; or its old version could not be removed after the new one was put in
        place (the message names the leftover).

    Notes
    -----
    Entries already in ``path`` that the new content does not replace are kept as they
    were (regular files copied with mode and times, symbolic links as links, fifos and
    other special files hard-linked, subdirectories with their modes). Directories
    bayesmix creates get mode ``0o777 & ~umask``; ones that existed keep theirs. On
    any error (or ``KeyboardInterrupt``) the temporary directory is removed and
    ``path`` is left as it was.
    """
    shown = _absolute(path)
    with _writing(shown):
        real = _real(shown)
        if real.exists() and not real.is_dir():
            raise BayesmixError(f"{shown} is a file, not a directory; give a new or an "
                                f"output directory's name")
        existed = real.is_dir()
        problem = _problem(real, is_dir=True)
        if problem:
            raise BayesmixError(f"{shown} {problem}")
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent))
    try:
        with _writing(shown):
            kept_modes = _copy_entries(real, tmp) if existed else {}
            copied = _entries(tmp)  # what the user had: the command may drop some of it
        yield tmp
        _stop_if_interrupted()
        with _writing(shown):
            _set_dir_modes(tmp, kept_modes, 0o777 & ~current_umask())
            old = _swap(tmp, real) if existed else None
            if not existed:
                os.replace(tmp, real)
    except BaseException:
        _remove_quietly(tmp)
        raise
    if old is not None:
        try:
            _keep_new_entries(old, real, copied)
            _remove(old)
        except OSError as exc:
            raise BayesmixError(f"wrote {shown}, but could not remove its previous version, "
                                f"moved to {old}: {exc.strerror or exc}") from None


def _copy_entries(source: Path, dest: Path) -> dict[Path, int]:
    """Copy what ``source`` holds into the existing directory ``dest``, nothing followed.

    Returns the mode each directory had, keyed by its path below ``dest`` (``dest``
    itself included), to be applied once the new content is written: during the write
    every directory stays writable. Regular files keep mode and times (``copy2``),
    links are made anew with the same target, and fifos, sockets and devices are
    hard-linked (copying would read a pipe and block).
    """
    modes = {dest: _mode(source)}
    with os.scandir(source) as entries:
        for entry in entries:
            target = dest / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir(follow_symlinks=False):
                os.mkdir(target)
                modes.update(_copy_entries(Path(entry.path), target))
            elif entry.is_file(follow_symlinks=False):
                shutil.copy2(entry.path, target, follow_symlinks=False)
            else:
                os.link(entry.path, target, follow_symlinks=False)
    return modes


def _entries(root: Path) -> set[str]:
    """Every path below ``root``, relative to it (links not followed)."""
    return {os.path.relpath(os.path.join(dirpath, name), root)
            for dirpath, dirnames, filenames in os.walk(root)
            for name in dirnames + filenames}


def _keep_new_entries(old: Path, new: Path, copied: set[str], below: str = "") -> None:
    """Move into ``new`` what the user put in ``old`` while the command wrote (an entry
    that was not there when it was copied, ``copied``, and that ``new`` lacks), before
    ``old`` is removed; a directory both hold is merged. What the command dropped of the
    copy (an old fit's netCDF) stays dropped."""
    with os.scandir(old) as entries:
        for entry in entries:
            relative = os.path.join(below, entry.name)
            target = new / entry.name
            if relative not in copied and not os.path.lexists(target):
                os.replace(entry.path, target)
            elif entry.is_dir(follow_symlinks=False) and target.is_dir() \
                    and not target.is_symlink():
                _keep_new_entries(Path(entry.path), target, copied, relative)


def _set_dir_modes(root: Path, kept: dict[Path, int], new_mode: int) -> None:
    """Directories under ``root`` (and ``root``): their old mode where they existed
    (``kept``), ``new_mode`` where bayesmix made them. Files keep theirs: the ones written
    follow the umask already, copied ones keep their own. Links are not followed."""
    directories = [root]
    for dirpath, dirnames, _ in os.walk(root):
        directories += [Path(dirpath, name) for name in dirnames
                        if not os.path.islink(os.path.join(dirpath, name))]
    for directory in directories:
        os.chmod(directory, kept.get(directory, new_mode))


def _swap(new: Path, real: Path) -> Path:
    """Put the directory ``new`` in place of the existing directory ``real``; returns
    where the old one went. If either rename fails or is interrupted, the old one is
    moved back before the error goes on."""
    old = Path(tempfile.mkdtemp(prefix=f".{real.name}.old-", dir=real.parent))
    try:
        os.replace(real, old)  # onto the empty directory mkdtemp made: a unique name
        os.replace(new, real)
    except BaseException:
        if not os.path.lexists(real):
            os.replace(old, real)
        else:
            _remove_quietly(old)  # empty when the first rename failed
        raise
    return old


def _make_removable(root: Path) -> None:
    """Give ``root`` and each directory below it that lacks them the owner's rwx bits
    (a read-only copy of a read-only directory cannot be emptied otherwise)."""
    def allow(directory: str) -> None:
        mode = _mode(Path(directory))
        if mode & stat.S_IRWXU != stat.S_IRWXU:
            os.chmod(directory, mode | stat.S_IRWXU)

    if os.path.islink(root) or not os.path.isdir(root):
        return
    allow(str(root))
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                allow(os.path.join(dirpath, name))


def _remove(path: Path) -> None:
    """Remove the directory ``path`` (never following links), read-only parts included."""
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    _make_removable(path)
    shutil.rmtree(path)


def _remove_quietly(path: Path) -> None:
    """:func:`_remove`, for cleaning up while another error is on its way."""
    with contextlib.suppress(OSError):
        _remove(path)


OWN_FILES = ("fit.json", "baseline.json", "optimum.json", "suggestion.json")
"""Files of bayesmix's output directories that its commands read back (with the
netCDFs a ``fit.json`` names): never written over by another command's output."""

_DIRECTORY_KINDS = {"fit.json": "a fit", "baseline.json": "a baseline"}
"""The files by which a loader tells what a directory holds: one directory holds one of
them, or a fit saved beside a baseline would hide it (or the reverse)."""


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
        Two outputs at one path; an output that is a file where a directory goes or the
        reverse; a file it
        writes that is one of the inputs, or a file of an input's output directory
        (:data:`OWN_FILES`, a netCDF); a directory output that is the working directory
        or holds it; a read-only output file or special file; an existing output
        directory, or a file the command writes into it, that the user cannot write; a
        fit written into a directory holding a baseline or the reverse; or a place that
        cannot be written (probed by making and removing an empty directory there).
        Symbolic links are followed, since the writers write through them.
    """
    given = {option: _absolute(path) for option, (path, _, _) in outputs.items()
             if path is not None}
    for option, path in given.items():
        same = [other for other, p in given.items() if p == path and other != option]
        if same:
            raise BayesmixError(f"{option} and {same[0]} are the same file {path}; "
                                f"give each output its own name")
    for option, (path, is_dir, names) in outputs.items():
        if path is None:
            continue
        out = Path(path)
        with _writing(out):
            sources = [Path(p).resolve() for p in inputs if p is not None and Path(p).exists()]
            real = _real(out)
            if is_dir and real.exists() and not real.is_dir():
                raise BayesmixError(f"{option} {out} is a file, not a directory; give a new "
                                    f"or an output directory's name")
            if not is_dir and real.is_dir():
                raise BayesmixError(f"{option} {out} is a directory; give the name of a file")
            here = _real(".")
            if is_dir and {_absolute(out), real} & {here, *here.parents, _absolute(".")}:
                raise BayesmixError(f"{option} {out} holds the working directory; give a "
                                    f"directory below it")
            _check_not_input(option, out, [out / n for n in names] if is_dir else [out],
                             names, sources)
            _check_writable(option, out, real, is_dir, names)
            ancestor = real.parent  # where the temporary file or directory goes
            while not ancestor.exists():
                ancestor = ancestor.parent
            if not ancestor.is_dir():
                raise NotADirectoryError(20, f"{ancestor} is not a directory")
            os.rmdir(tempfile.mkdtemp(prefix=".bayesmix-probe-", dir=ancestor))


def _check_not_input(option: str, out: Path, written: list[Path], names: tuple[str, ...],
                     sources: list[Path]) -> None:
    """Refuse a file to be written that is an input, or that an input directory holds
    and another command reads back (this command's own outputs are its to replace)."""
    for path in written:
        target = path.resolve()
        for source in sources:
            own = source.is_dir() and target.parent == source and (
                target.suffix == ".nc"
                or (target.name in OWN_FILES and target.name not in names))
            if target == source or own:
                raise BayesmixError(f"{option} {out} would overwrite {target}, which "
                                    f"this command reads; give another name")


def _uncopyable(root: Path) -> Path | None:
    """The first entry below ``root`` that :func:`_copy_entries` could not copy (a
    directory it cannot list, a regular file it cannot read), or None."""
    unlisted: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted.append):
        if unlisted:
            break
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            need = os.R_OK | os.X_OK if name in dirnames else os.R_OK
            if (name in dirnames or os.path.isfile(path)) and not os.access(path, need):
                return Path(path)
    return Path(unlisted[0].filename) if unlisted else None


def _check_writable(option: str, out: Path, real: Path, is_dir: bool,
                    names: tuple[str, ...]) -> None:
    """Refuse a read-only or special output; a file the command writes into its output
    directory that is read-only, or a link (written through in place, so a failure could
    leave its target half-written); and a fit over a baseline's directory or the
    reverse."""
    problem = _problem(real, is_dir)
    if problem:
        raise BayesmixError(f"{option} {out} {problem}")
    if not (is_dir and real.is_dir()):
        return
    blocked = _uncopyable(real)
    if blocked is not None:
        raise BayesmixError(f"{option} {out} holds {blocked}, which cannot be read, so the "
                            f"directory's files cannot be kept; make it readable or give "
                            f"another directory")
    for name in names:
        if (real / name).is_symlink():  # the command would write through it, in place
            raise BayesmixError(f"{option} {out / name} is a symbolic link, and this command "
                                f"writes that file: remove the link or give another directory")
        problem = _problem(real / name, is_dir=False)
        if problem:
            raise BayesmixError(f"{option} {out / name} {problem}")
    writes = [name for name in names if name in _DIRECTORY_KINDS]
    held = [name for name in _DIRECTORY_KINDS
            if name not in names and (real / name).exists()]
    if writes and held:
        raise BayesmixError(
            f"{option} {out} holds {_DIRECTORY_KINDS[held[0]]} ({held[0]}); this command "
            f"writes {_DIRECTORY_KINDS[writes[0]]} ({writes[0]}), and one directory holds "
            f"one of them: give another directory")
