"""Progress of long commands: a bar on a terminal, nothing on a pipe."""

import io
import sys

from bayesmix.commands.progress import Progress, interactive


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def _run_steps() -> None:
    with Progress(None, "cross-validation") as bar:
        bar.step_to("refit without N=1e8", 0, 3)
        bar.step_to("refit without N=2e8", 1, 3)
        bar.done("fold N=2e8: done")


def test_a_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert interactive()
    _run_steps()
    text = sys.stderr.getvalue()
    assert "cross-validation: 1/3" in text and "refit without N=2e8" in text
    assert "fold N=2e8: done" in text and "cross-validation: 2/3" in text


def test_nothing_on_a_pipe(monkeypatch):
    """Negative control of the test above: the same steps, stderr a pipe."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not interactive()
    _run_steps()
    assert sys.stderr.getvalue() == ""


def test_answers_go_to_stdout_either_way(monkeypatch, capsys):
    for stderr in (io.StringIO(), Terminal()):
        monkeypatch.setattr(sys, "stderr", stderr)
        with Progress(1, "baseline") as bar:
            bar.echo("book: huber 1e-4")
            bar.done()
        assert capsys.readouterr().out == "book: huber 1e-4\n"
