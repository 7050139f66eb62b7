"""Packaging: the wheel carries the law files, the console script runs."""

import subprocess
import sys
import zipfile
from pathlib import Path

from bayesmix.laws import builtin_law_names

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_builtin_laws(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = tmp_path.glob("bayesmix-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for law in builtin_law_names():
        assert f"bayesmix/models/{law}.py" in names
    assert "bayesmix/py.typed" in names
    assert not any(n.startswith("models/") for n in names)  # no top-level 'models' package


def test_console_script_lists_laws():
    script = Path(sys.executable).parent / "bayesmix"
    out = subprocess.run([str(script), "laws", "--json"], check=True, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.count('"name"') == 12


def test_law_files_found_from_package_not_cwd(tmp_path):
    """Laws load from the installed package wherever the command runs."""
    out = subprocess.run([sys.executable, "-m", "bayesmix", "laws"], cwd=tmp_path, check=True,
                         capture_output=True, text=True, timeout=300)
    assert "additive" in out.stdout and "ye_m4" in out.stdout
