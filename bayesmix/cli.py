"""The ``bayesmix`` command line: parse, call the library, report errors in one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from bayesmix._errors import BayesmixError

__all__ = ["main"]


def _one_line(message: str) -> str:
    """``message`` on one line, even when a name the user gave holds a line break."""
    return message.strip().replace("\r", "\\r").replace("\n", "\\n")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {_one_line(message)}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand."""
    from bayesmix._version import __version__
    from bayesmix.commands import command_modules

    parser = _Parser(
        prog="bayesmix",
        description="Bayesian scaling laws for pretraining data mixtures.",
    )
    parser.add_argument("--version", action="version", version=f"bayesmix {__version__}")
    parser.add_argument("--float32", action="store_true",
                        help="compute in float32 (default float64)")
    parser.add_argument("--platform", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where JAX computes: auto (a GPU when JAX has one, else the "
                             "CPU), cpu, or gpu (an error if JAX cannot start one; the "
                             "chains share its devices)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in command_modules():
        module.register(subparsers)
    return parser


def _start_jax(args: argparse.Namespace) -> None:
    """Program start: device count for parallel chains, precision, compilation cache."""
    chains = getattr(args, "chains", None)
    if "XLA_FLAGS" not in os.environ or "host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""
    ):
        import numpyro

        numpyro.set_host_device_count(max(int(chains or 1), os.cpu_count() or 1))
    import jax

    from bayesmix._jaxutil import use_compilation_cache, use_platform

    use_platform(args.platform)
    jax.config.update("jax_enable_x64", not args.float32)
    use_compilation_cache()


_INPUTS = ("ratios", "metrics", "fits", "fit", "baseline", "optimum", "suggest",
           "reference", "candidates", "params")
"""Options whose values are files or directories a command reads (besides its run
table, whose option ``runs_dest`` names, and a law given as a file)."""


def _check_outputs(args: argparse.Namespace) -> None:
    """The command's outputs (its ``outputs`` default: option -> "file", or the names of
    the files it writes into a directory) checked against what it reads, before any
    work."""
    from bayesmix._io import check_outputs

    kinds = getattr(args, "outputs", {})
    names = [*_INPUTS, *([args.runs_dest] if getattr(args, "runs_dest", None) else [])]
    values = [getattr(args, name, None) for name in names]
    law = getattr(args, "law", None)
    if isinstance(law, str) and law.endswith(".py"):
        values.append(law)
    inputs = [v for value in values for v in (value if isinstance(value, list) else [value])
              if isinstance(v, str | os.PathLike)]
    check_outputs({f"--{name.replace('_', '-')}": (getattr(args, name), kind != "file",
                                                    () if kind == "file" else kind)
                   for name, kind in kinds.items()}, inputs)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` as usual and also sets
    :data:`bayesmix._io.INTERRUPTED`, which the writers check before they put anything in
    place: an interrupt Python dropped (raised inside a garbage-collection callback)
    still stops the command from replacing its outputs. The handler before is put back
    at the end and the flag cleared (a library write after the command is not
    stopped); where SIGINT is ignored (a background job of a script) it stays ignored."""
    from bayesmix._io import INTERRUPTED

    def interrupt(signum: int, frame: Any) -> None:
        INTERRUPTED.set()
        raise KeyboardInterrupt

    INTERRUPTED.clear()
    handle = (threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN)
    before = signal.signal(signal.SIGINT, interrupt) if handle else None
    try:
        yield
        if INTERRUPTED.is_set():  # dropped, and nothing was written after it
            raise KeyboardInterrupt
    finally:
        INTERRUPTED.clear()
        if handle:
            signal.signal(signal.SIGINT, signal.SIG_DFL if before is None else before)


SEED_BOUND = 2 ** 63
"""``--seed`` lies in ``[-SEED_BOUND, SEED_BOUND)``: what a PRNG key takes (64 bits)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    seed = getattr(args, "seed", None)
    if seed is not None and not -SEED_BOUND <= seed < SEED_BOUND:
        parser.error(f"argument --seed: {seed} is out of range (a whole number from "
                     f"-2**63 to 2**63 - 1)")
    try:
        with _interruptible():
            _check_outputs(args)
            _start_jax(args)
            return int(args.func(args) or 0)
    except BayesmixError as exc:
        sys.stderr.write(f"bayesmix: error: {_one_line(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bayesmix: interrupted; nothing half-written was kept\n")
        return 130
    except BrokenPipeError:
        return _broken_pipe()


def _broken_pipe() -> int:
    """The reader of stdout stopped (``bayesmix predict ... | head``): exit quietly with
    the status a shell gives a command ended by SIGPIPE, 141, with stdout sent to
    ``os.devnull`` so that Python's flush at exit does not raise again (the Python
    documentation's recipe, "Note on SIGPIPE"). Files are written through a temporary
    file and a rename (:mod:`bayesmix._io`), never into a pipe, so stdout is the only
    pipe a command writes to."""
    with contextlib.suppress(OSError, ValueError):  # stdout closed or not a file
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141


if __name__ == "__main__":
    sys.exit(main())
