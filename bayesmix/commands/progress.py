"""Progress of long commands on stderr: a bar when stderr is a terminal, nothing when piped.

Every long command (``fit``, ``baseline``, ``compare --cv``, ``suggest``, ``demo``) shows
its steps through one :class:`Progress`; the library only calls back (``on_target``,
``on_fold``, ``on_stage``), so it never writes to the terminal itself.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = ["Progress", "interactive"]


def interactive() -> bool:
    """Whether stderr is a terminal (progress is shown) rather than a pipe or a file."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """A bar over ``total`` steps on stderr, or nothing when stderr is not a terminal.

    Parameters
    ----------
    total : int or None
        Steps the command will take (None: known at the first :meth:`step_to`).
    desc : str
        What the command does (the bar's label).

    Examples
    --------
    ::

        with Progress(3, "fit additive") as bar:
            for target in targets:
                bar.start(target)      # the bar's note: what runs now
                ...
                bar.done(f"{target}: R-hat 1.004")   # a line above the bar, one step on
    """

    def __init__(self, total: int | None, desc: str) -> None:
        self._bar: Any = None
        self._desc = desc
        self._waiting = interactive()  # for its total, when it is not known yet
        if self._waiting and total is not None:
            self._open(total)

    def _open(self, total: int) -> None:
        from tqdm.auto import tqdm

        self._waiting = False
        self._bar = tqdm(total=total, desc=self._desc, file=sys.stderr, leave=False,
                         dynamic_ncols=True,
                         bar_format="{desc}: {n}/{total} [{elapsed}<{remaining}]{postfix}")

    @property
    def shown(self) -> bool:
        """Whether progress is shown (stderr is a terminal)."""
        return self._bar is not None or self._waiting

    def start(self, what: str) -> None:
        """Name the step that runs now."""
        if self._bar is not None:
            self._bar.set_postfix_str(what, refresh=True)

    def done(self, line: str | None = None) -> None:
        """One step on; ``line`` (if given) is printed above the bar."""
        if self._bar is None:
            return
        if line:
            self._bar.write(line, file=sys.stderr)
        self._bar.update(1)
        self._bar.refresh()

    def echo(self, line: str) -> None:
        """Print ``line`` on stdout (an answer, not progress) without breaking the bar."""
        if self._bar is None:
            print(line, flush=True)
        else:
            self._bar.write(line, file=sys.stdout)
            sys.stdout.flush()

    def step_to(self, what: str, index: int, total: int) -> None:
        """Step ``index`` of ``total`` (from 0), ``what``, runs now.

        The signature of the library's ``on_fold`` and ``on_stage`` callbacks.
        """
        if self._waiting:
            self._open(total)
        if self._bar is None:
            return
        self._bar.total = total
        self._bar.update(index - self._bar.n)
        self.start(what)

    def close(self) -> None:
        self._waiting = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
