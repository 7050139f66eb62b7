"""Packaging: the wheel carries the law files, the console script runs."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


def _has_gpu() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: --platform gpu would work")
def test_platform_gpu_without_one_is_a_one_line_error(tmp_path):
    """``--platform gpu`` where JAX cannot start a GPU: exit 2, one line naming it; the
    same command on the CPU works (the control)."""
    def run(platform: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bayesmix", "--platform", platform,
                               "laws"], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "JAX_PLATFORMS": ""})

    gpu = run("gpu")
    assert gpu.returncode == 2 and gpu.stdout == ""
    assert gpu.stderr.count("\n") == 1 and "platform 'gpu'" in gpu.stderr
    assert "Traceback" not in gpu.stderr
    cpu = run("cpu")
    assert cpu.returncode == 0 and "additive" in cpu.stdout
