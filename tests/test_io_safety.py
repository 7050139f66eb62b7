"""Writing outputs never loses or exposes what a user already has (``bayesmix._io``).

Each test names the audit item it covers: modes of existing directories (1), links in
an output directory (2), an output that is a link (3), dangling links and fifos (4),
read-only places (5), a fit and a baseline in one directory (6), and the guarantee
that a failure or interrupt leaves the old directory as it was.

Permission bits do not bind root, so the read-only tests run their checks in a
subprocess as an ordinary user: directly when the tests are not run as root, else in
a user namespace (``unshare --user --map-user=1000``), skipped where neither works.
The refusals of :func:`check_outputs` are also checked in-process, with ``os.access``
simulated from the mode bits.
"""

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bayesmix._io as io
from bayesmix._errors import BayesmixError
from bayesmix._io import atomic_dir, atomic_file, check_outputs


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _leftovers(folder):
    """Temporary or moved-aside entries bayesmix may leave beside its outputs."""
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp") or ".old-" in n)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield 0o022
    os.umask(old)


# --------------------------------------------------------------------- 1: modes


def test_existing_directories_keep_their_mode(umask022, tmp_path):
    out = tmp_path / "u"
    (out / "priv").mkdir(parents=True)
    (out / "priv" / "secret.txt").write_text("mine\n")
    os.chmod(out, 0o700)
    os.chmod(out / "priv", 0o700)
    with atomic_dir(out) as tmp:
        (tmp / "baseline.json").write_text("{}\n")
        (tmp / "plots").mkdir()
    assert _mode(out) == 0o700 and _mode(out / "priv") == 0o700  # were made 0755
    assert _mode(out / "plots") == 0o755  # made by bayesmix: the umask's mode
    assert (out / "priv" / "secret.txt").read_text() == "mine\n"


def test_a_new_directory_follows_the_umask(umask022, tmp_path):
    with atomic_dir(tmp_path / "new") as tmp:
        (tmp / "sub").mkdir()
    assert _mode(tmp_path / "new") == _mode(tmp_path / "new" / "sub") == 0o755


# --------------------------------------------------------------------- 2: links inside


def test_links_in_an_output_directory_stay_links(tmp_path):
    (tmp_path / "target.txt").write_text("shared\n")
    (tmp_path / "target_dir").mkdir()
    out = tmp_path / "u"
    out.mkdir()
    (out / "link.txt").symlink_to(tmp_path / "target.txt")
    (out / "linkdir").symlink_to(tmp_path / "target_dir")
    (out / "relative").symlink_to("link.txt")
    with atomic_dir(out) as tmp:
        (tmp / "baseline.json").write_text("{}\n")
    for name, target in (("link.txt", tmp_path / "target.txt"),
                         ("linkdir", tmp_path / "target_dir"), ("relative", Path("link.txt"))):
        assert (out / name).is_symlink(), name  # were copied into a file and a directory
        assert Path(os.readlink(out / name)) == target


def test_a_link_named_like_an_output_inside_the_directory_is_refused(tmp_path):
    """The command writes such a file in place (``write_text``) through the kept link:
    a failure could leave the link's target half-written."""
    (tmp_path / "shared.json").write_text("theirs\n")
    out = tmp_path / "u"
    out.mkdir()
    (out / "baseline.json").symlink_to(tmp_path / "shared.json")
    with pytest.raises(BayesmixError, match="baseline.json is a symbolic link"):
        check_outputs({"--out": (out, True, ("baseline.json",))}, [])
    check_outputs({"--out": (out, True, ("optimum.json",))}, [])  # a file it does not write


# --------------------------------------------------------------------- 3: output is a link


def test_an_output_directory_that_is_a_link_is_written_through(tmp_path):
    real = tmp_path / "realD"
    real.mkdir()
    (real / "notes.txt").write_text("keep\n")
    (tmp_path / "uD").symlink_to("realD")
    with atomic_dir(tmp_path / "uD") as tmp:
        (tmp / "baseline.json").write_text("{}\n")
    assert (tmp_path / "uD").is_symlink() and os.readlink(tmp_path / "uD") == "realD"
    assert (real / "baseline.json").read_text() == "{}\n"
    assert (real / "notes.txt").read_text() == "keep\n"
    assert _leftovers(tmp_path) == []  # a stale .uD.old-PID link was left


def test_an_output_file_that_is_a_link_is_written_through(umask022, tmp_path):
    (tmp_path / "target.csv").write_text("old\n")
    os.chmod(tmp_path / "target.csv", 0o640)
    (tmp_path / "link.csv").symlink_to("target.csv")
    with atomic_file(tmp_path / "link.csv") as handle:
        handle.write("new\n")
    assert (tmp_path / "link.csv").is_symlink()  # was replaced by a regular file
    assert (tmp_path / "target.csv").read_text() == "new\n"
    assert _mode(tmp_path / "target.csv") == 0o640  # a replaced file keeps its mode
    assert _leftovers(tmp_path) == []


def test_check_outputs_follows_a_link_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "here").symlink_to(tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(BayesmixError, match="holds the working directory"):
        check_outputs({"--out": ("here", True, ("baseline.json",))}, [])


# --------------------------------------------------------------------- 4: special entries


def test_dangling_links_and_fifos_survive(tmp_path):
    out = tmp_path / "u"
    out.mkdir()
    (out / "x").symlink_to("/nonexistent/bayesmix-test")
    if hasattr(os, "mkfifo"):
        os.mkfifo(out / "p")
    with atomic_dir(out) as tmp:  # shutil.Error from copytree
        (tmp / "baseline.json").write_text("{}\n")
    assert os.readlink(out / "x") == "/nonexistent/bayesmix-test"
    if hasattr(os, "mkfifo"):
        assert stat.S_ISFIFO(os.lstat(out / "p").st_mode)
    assert (out / "baseline.json").exists() and _leftovers(tmp_path) == []


def test_a_fifo_is_refused_as_an_output_file(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no fifos here")
    os.mkfifo(tmp_path / "p.csv")
    with pytest.raises(BayesmixError, match="not a regular file"):
        check_outputs({"--out": (tmp_path / "p.csv", False, ())}, [])


# --------------------------------------------------------------------- 5: read-only places


def _simulated_access(path, mode, **kwargs):
    """``os.access`` as the permission bits say for the owner (root ignores them)."""
    bits = os.stat(path).st_mode
    wanted = [(os.R_OK, stat.S_IRUSR), (os.W_OK, stat.S_IWUSR), (os.X_OK, stat.S_IXUSR)]
    return all(bits & bit for flag, bit in wanted if mode & flag)


@pytest.fixture
def read_only(tmp_path):
    """A read-only directory with a file, and a read-only file; writable again after."""
    folder, page = tmp_path / "ro", tmp_path / "ro.html"
    folder.mkdir()
    (folder / "mine").write_text("x\n")
    page.write_text("<p>mine\n")
    os.chmod(folder, 0o555)
    os.chmod(page, 0o444)
    yield folder, page
    os.chmod(folder, 0o755)
    os.chmod(page, 0o644)


def test_check_outputs_refuses_read_only_places(read_only, monkeypatch):
    folder, page = read_only
    monkeypatch.setattr(io.os, "access", _simulated_access)
    for option, out, is_dir, names in (("--out", folder, True, ("baseline.json",)),
                                       ("--out", page, False, ())):
        with pytest.raises(BayesmixError, match=r"is read-only \(mode 0[45][45][45]\)") as info:
            check_outputs({option: (out, is_dir, names)}, [])
        assert "\n" not in str(info.value) and str(out) in str(info.value)
    writable = folder.parent / "w"
    writable.mkdir()
    (writable / "fit.json").write_text("{}\n")
    os.chmod(writable / "fit.json", 0o444)
    with pytest.raises(BayesmixError, match=r"w/fit.json is read-only"):
        check_outputs({"--out": (writable, True, ("fit.json",))}, [])
    check_outputs({"--out": (writable, True, ("optimum.json",))}, [])  # not a file it writes


def _unprivileged(script: str) -> subprocess.CompletedProcess:
    """Run ``script`` as an ordinary user (see the module docstring); it may use
    ``atomic_dir``, ``atomic_file``, ``check_outputs``, ``BayesmixError`` and ``Path``."""
    command = [sys.executable, "-c", _PRELUDE.format(package=str(Path(io.__file__).parent))
               + textwrap.dedent(script)]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root and no unshare to drop privileges")
        probe = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000",
                                "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("running as root and user namespaces are not available")
        command = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


# bayesmix/__init__ imports JAX (seconds); these scripts need only _io and _errors
_PRELUDE = """\
import os, sys, types
from pathlib import Path
package = types.ModuleType("bayesmix")
package.__path__ = [{package!r}]
sys.modules["bayesmix"] = package
from bayesmix._errors import BayesmixError
from bayesmix._io import atomic_dir, atomic_file, check_outputs
assert os.geteuid() != 0, "still root"
"""


def test_read_only_places_are_refused_without_leftovers(read_only):
    folder, page = read_only
    _unprivileged(f"""
        folder, page = Path({str(folder)!r}), Path({str(page)!r})
        for out, is_dir in ((folder, True), (page, False)):
            try:
                check_outputs({{"--out": (out, is_dir, ("baseline.json",) * is_dir)}}, [])
            except BayesmixError as exc:
                assert "read-only" in str(exc) and "\\n" not in str(exc), exc
            else:
                raise AssertionError(f"{{out}} accepted")
        try:  # a library caller, without check_outputs: refused before writing
            with atomic_dir(folder) as tmp:
                (tmp / "baseline.json").write_text("{{}}")
        except BayesmixError as exc:
            assert "read-only" in str(exc), exc
        else:
            raise AssertionError("read-only directory replaced")
        try:
            with atomic_file(page) as handle:
                handle.write("new")
        except BayesmixError as exc:
            assert "read-only" in str(exc), exc
        else:
            raise AssertionError("read-only file replaced")
        assert sorted(os.listdir(folder)) == ["mine"] and page.read_text() == "<p>mine\\n"
        assert oct(os.stat(folder).st_mode & 0o777) == "0o555"
        left = [n for n in os.listdir(folder.parent) if n.startswith(".")]
        assert left == [], left
    """)


def test_read_only_subdirectories_leave_nothing_behind(tmp_path):
    out = tmp_path / "u"
    (out / "rosub").mkdir(parents=True)
    (out / "rosub" / "f").write_text("a\n")
    os.chmod(out / "rosub", 0o555)
    try:
        _unprivileged(f"""
            out = Path({str(out)!r})
            with atomic_dir(out) as tmp:  # the old copy, moved aside, holds rosub
                (tmp / "fit.json").write_text("{{}}")
            try:  # a failure after a read-only directory was made in the new copy
                with atomic_dir(out) as tmp:
                    (tmp / "sub").mkdir()
                    (tmp / "sub" / "f").write_text("1")
                    os.chmod(tmp / "sub", 0o555)
                    raise RuntimeError("boom")
            except RuntimeError:
                pass
            assert os.listdir(out.parent) == ["u"], os.listdir(out.parent)  # no leftovers
            assert sorted(os.listdir(out)) == ["fit.json", "rosub"], os.listdir(out)
            assert oct(os.stat(out / "rosub").st_mode & 0o777) == "0o555"
        """)
    finally:
        os.chmod(out / "rosub", 0o755)


# --------------------------------------------------------------------- 6: one kind per dir


def test_a_fit_and_a_baseline_do_not_share_a_directory(tmp_path):
    from bayesmix.cli import build_parser

    common = ["small.csv", "--law", "additive", "--target", "d0", "--out", "X"]
    names = {command: build_parser().parse_args([command, *common]).outputs["out"]
             for command in ("fit", "baseline")}
    assert names == {"fit": ("fit.json",), "baseline": ("baseline.json",)}
    fit_dir, base_dir = tmp_path / "fit", tmp_path / "base"
    for folder, name in ((fit_dir, "fit.json"), (base_dir, "baseline.json")):
        folder.mkdir()
        (folder / name).write_text("{}\n")
    for out, command, held in ((fit_dir, "baseline", "a fit"), (base_dir, "fit", "a baseline")):
        with pytest.raises(BayesmixError, match=f"holds {held}") as info:
            check_outputs({"--out": (out, True, names[command])}, [])
        assert str(out) in str(info.value) and "\n" not in str(info.value)
    # the same kind again (a refit) and other commands' directories are fine
    check_outputs({"--out": (fit_dir, True, names["fit"])}, [])
    check_outputs({"--out": (base_dir, True, names["baseline"])}, [])
    check_outputs({"--out": (fit_dir, True, ("optimum.json", "h_star_draws.csv"))}, [])


# --------------------------------------------------------------------- the guarantees


def test_a_failure_or_interrupt_leaves_the_old_directory(tmp_path, monkeypatch):
    out = tmp_path / "u"
    out.mkdir()
    (out / "baseline.json").write_text("old\n")
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_dir(out) as tmp:
            (tmp / "baseline.json").write_text("new\n")
            raise error
        assert (out / "baseline.json").read_text() == "old\n" and _leftovers(tmp_path) == []
    # an interrupt between moving the old directory aside and putting the new in place
    real_replace = os.replace
    calls = []

    def interrupted(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(source, target)

    with pytest.raises(KeyboardInterrupt), atomic_dir(out) as tmp:
        (tmp / "baseline.json").write_text("new\n")
        monkeypatch.setattr(io.os, "replace", interrupted)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert (out / "baseline.json").read_text() == "old\n" and _leftovers(tmp_path) == []


def test_the_cli_keeps_a_users_directory_as_it_was(umask022, tmp_path, monkeypatch, capsys):
    """End to end: a cheap baseline into a directory holding a private folder, links
    (one dangling) and a fifo."""
    from bayesmix.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--law", "additive", "--domains", "2", "--seed", "1",
                 "--sizes", "1e8,2e8,4e8", "--tokens-per-param", "4,8,16", "--mixtures", "5",
                 "--out", "small.csv"]) == 0
    out = tmp_path / "u"
    (out / "priv").mkdir(parents=True)
    os.chmod(out, 0o700)
    os.chmod(out / "priv", 0o700)
    (tmp_path / "target.txt").write_text("shared\n")
    (out / "link.txt").symlink_to(tmp_path / "target.txt")
    (out / "x").symlink_to("/nonexistent/bayesmix-test")
    if hasattr(os, "mkfifo"):
        os.mkfifo(out / "p")
    (tmp_path / "real").mkdir()
    (tmp_path / "uD").symlink_to("real")
    for where in ("u", "uD"):
        assert main(["baseline", "small.csv", "--law", "additive", "--target", "d0",
                     "--out", where, "--starts", "50", "--keep", "2", "--hops", "1"]) == 0
    assert capsys.readouterr().err == ""
    assert _mode(out) == _mode(out / "priv") == 0o700
    assert (out / "link.txt").is_symlink() and (out / "x").is_symlink()
    assert (out / "baseline.json").is_file() and (tmp_path / "real" / "baseline.json").is_file()
    assert (tmp_path / "uD").is_symlink() and _leftovers(tmp_path) == []
    if hasattr(os, "mkfifo"):
        assert stat.S_ISFIFO(os.lstat(out / "p").st_mode)


def test_an_unreadable_entry_is_refused_before_any_work(tmp_path, monkeypatch):
    """A file or folder in the output directory the copy could not read: refused by
    check_outputs (else the command would fail after its work, in the copy)."""
    monkeypatch.setattr(io.os, "access", _simulated_access)
    out = tmp_path / "out"
    (out / "locked").mkdir(parents=True)
    (out / "secret.txt").write_text("x")
    check_outputs({"--out": (out, True, ("baseline.json",))}, [])  # all readable
    for entry, mode in ((out / "secret.txt", 0o200), (out / "locked", 0o000)):
        os.chmod(entry, mode)
        try:
            with pytest.raises(BayesmixError, match=f"holds {entry}, which cannot be read"):
                check_outputs({"--out": (out, True, ("baseline.json",))}, [])
        finally:
            os.chmod(entry, 0o700)


def test_a_file_added_while_the_command_writes_is_kept(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "old.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "fit.json").write_text("{}")
        (out / "notes.txt").write_text("written meanwhile")  # the user, during the run
        (out / "sub" / "more.txt").write_text("also")
    assert (out / "notes.txt").read_text() == "written meanwhile"
    assert (out / "sub" / "more.txt").read_text() == "also"
    assert {p.name for p in out.iterdir()} == {"sub", "old.txt", "fit.json", "notes.txt"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no moved-aside copy left
