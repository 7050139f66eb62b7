"""Small CLI fixes: ``laws --domains`` in the text table, help text without ``%%``, a
reader that closes the pipe."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
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



def test_json_output_is_strict_and_reads_back(tmp_path, capsys):
    from bayesmix.commands.common import emit_json
    from bayesmix.report_inputs import read_suggestion

    emit_json({"weight": float("nan"), "rows": [1.5, float("inf")], "n": 3})
    text = capsys.readouterr().out
    assert json.loads(text, parse_constant=_refuse) == {"weight": None, "rows": [1.5, None],
                                                        "n": 3}
    # a suggestion file with a non-finite gain reads back as NaN where one is allowed
    run = {"N": 1e9, "D": 2e10, "mixture": {"a": 0.5, "b": 0.5}, "cost_flops": 1e20,
           "expected_gain": 0.0, "gain_se": float("nan"), "gain_per_flop": 0.0}
    payload = {"N": 1e9, "D": 2e10, "expected_regret": 1e-4, "relative_regret": 1e-4,
               "n_candidates": 1, "reason": "r", "runs": [run],
               "batch": {"expected_gain": 0.0, "gain_se": float("inf"),
                         "expected_regret_after": 1e-4, "cost_flops": 1e20}}
    (tmp_path / "s").mkdir()
    emit_json(payload, str(tmp_path / "s" / "suggestion.json"))
    read = read_suggestion(tmp_path / "s")
    assert np.isnan(read["runs"][0]["gain_se"]) and np.isnan(read["batch"]["gain_se"])


def _refuse(token):
    raise ValueError(f"not strict JSON: {token}")
