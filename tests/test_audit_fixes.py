"""Small CLI fixes: ``laws --domains`` in the text table, help text without ``%%``, a
reader that closes the pipe."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from bayesmix.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)).choices


def test_laws_text_shows_the_count_at_the_given_domains(capsys):
    assert main(["laws", "--json", "--domains", "7"]) == 0
    counts = {r["name"]: r["n_params"] for r in json.loads(capsys.readouterr().out)}
    tables = {}
    for k in (3, 7):
        assert main(["laws", "--domains", str(k)]) == 0
        tables[k] = capsys.readouterr().out.splitlines()
    assert tables[3] != tables[7]  # negative control: the count moves with k
    assert tables[7][0].split()[:4] == ["law", "params", "at", "k=7"]
    for line in tables[7][1:]:
        name, *_ = line.split()
        assert f"  {counts[name]}  " in line, line


@pytest.mark.parametrize("command", ["compare", "laws", "simulate", "predict"])
def test_help_has_no_doubled_percent(command):
    sub = _subparsers()[command]
    text = sub.format_help()
    assert "%%" not in text
    if command == "compare":
        assert "50 % and 90 %" in text  # the description still says it


_FLOOD = """
import sys
import bayesmix.commands.laws as laws
from bayesmix.cli import main

def flood(args):
    for _ in range(200000):
        print("row " * 20)
    return 0

laws.run = flood
sys.exit(main(["laws"]))
"""


def test_a_reader_closing_stdout_ends_the_command_quietly():
    done = subprocess.run(f"{sys.executable} -c '{_FLOOD}' | head -c 10", shell=True,
                          capture_output=True, text=True, timeout=120,
                          executable="/bin/bash")
    assert done.stdout == "row row ro"
    assert done.stderr == ""  # no traceback, no "Exception ignored" at exit
    status = subprocess.run(f"set -o pipefail; {sys.executable} -c '{_FLOOD}' | head -c 1 "
                            ">/dev/null", shell=True, timeout=120, executable="/bin/bash")
    assert status.returncode == 141

