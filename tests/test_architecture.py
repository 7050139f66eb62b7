"""The package's shape: no import cycles, small modules, a README that matches the code."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import bayesmix
from bayesmix.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesmix"
README = ROOT / "README.md"
MAX_LINES = 500


# ------------------------------------------------------------------ import graph


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``bayesmix/commands/fit.py`` -> ``bayesmix.commands.fit`` (``__init__`` -> package)."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative import ``from .{level} target import ...``."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(path: Path, modules: set[str], package: Path = PACKAGE) -> set[str]:
    """Every ``bayesmix`` module ``path`` imports, anywhere in the file (functions too).

    ``from bayesmix.x import y`` counts as an import of ``bayesmix.x.y`` when that is a
    module, else of ``bayesmix.x``; relative imports are resolved first.
    """
    name = module_name(path, package)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = (_resolve(name, is_package, node.level, node.module) if node.level
                      else node.module or "")
            candidates = [f"{source}.{alias.name}" for alias in node.names
                          if f"{source}.{alias.name}" in modules] or [source]
        else:
            continue
        for candidate in candidates:
            # the longest prefix that is a module of the package
            parts = candidate.split(".")
            for end in range(len(parts), 0, -1):
                prefix = ".".join(parts[:end])
                if prefix in modules:
                    if prefix != name:
                        found.add(prefix)
                    break
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    paths = sorted(package.rglob("*.py"))
    modules = {module_name(p, package) for p in paths}
    return {module_name(p, package): imports_of(p, modules, package) for p in paths}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one node (or a self-loop).

    Each cycle is a list of modules ``[a, b, ..., a]`` following import edges.
    """
    return [_cycle_in(graph, set(component)) for component in cyclic_components(graph)]


def cyclic_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle, each sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete cycle through the component's first node (breadth-first, shortest)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ()) & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_cycle_finder_reports_a_synthetic_cycle():
    """Negative control: a graph with a cycle is caught and the cycle is named."""
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a", "p.d"}, "p.d": set(),
             "p.e": {"p.e"}}
    cycles = find_cycles(graph)
    assert ["p.a", "p.b", "p.c", "p.a"] in cycles
    assert ["p.e", "p.e"] in cycles
    assert len(cycles) == 2
    assert find_cycles({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": set()}) == []


def test_import_reader_sees_function_level_and_relative_imports(tmp_path):
    """Negative control: imports inside functions and relative ones become edges."""
    package = tmp_path / "bayesmix"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from bayesmix.sub import b\n")
    (package / "sub" / "b.py").write_text("from ..a import f\nfrom . import c\n")
    (package / "sub" / "c.py").write_text("import bayesmix.a\n")
    graph = import_graph(package)
    assert graph["bayesmix.a"] == {"bayesmix.sub.b"}
    assert graph["bayesmix.sub.b"] == {"bayesmix.a", "bayesmix.sub.c"}
    assert find_cycles(graph) == [["bayesmix.a", "bayesmix.sub.b", "bayesmix.a"]]


def test_no_import_cycle_in_bayesmix():
    graph = import_graph()
    assert "bayesmix.runs" in graph and graph["bayesmix.simulate"]  # the walk saw the package
    cycles = find_cycles(graph)
    assert not cycles, "; ".join(
        f"import cycle {' -> '.join(cycle)} (modules on cycles with it: {', '.join(members)})"
        for cycle, members in zip(cycles, cyclic_components(graph), strict=True))


def test_no_module_over_500_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 10
    too_long = {path: n for path, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


# ------------------------------------------------------------------------ README


def readme_section(title: str, text: str | None = None) -> str:
    """The body of the README's ``## title`` section (up to the next ``## ``)."""
    text = README.read_text() if text is None else text
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise AssertionError(f"README has no section '## {title}'")
    return match.group(1)


def api_names(section: str) -> set[str]:
    """Names the Python API section says ``bayesmix`` exports.

    ``bayesmix.<name>`` anywhere, names in ``from bayesmix import ...`` statements, and,
    outside code blocks, every code span that is a bare name or a call (```name``` or
    ```name(args)```; ```Table.attr``` is an attribute, not an export).
    """
    names = set(re.findall(r"\bbayesmix\.([A-Za-z_]\w*)", section))
    for match in re.finditer(r"from bayesmix import (?:\(([^)]*)\)|([\w ,]+))", section):
        names |= {n.strip() for n in (match.group(1) or match.group(2)).split(",")
                  if n.strip()}
    prose = re.sub(r"^```.*?^```", "", section, flags=re.M | re.S)
    names |= set(re.findall(r"`([A-Za-z_]\w*)(?:\([^`]*\))?`", prose))
    return names - {"bayesmix"}


def test_readme_api_names_import_from_bayesmix():
    names = api_names(readme_section("Python API"))
    assert {"load_runs", "simulate_runs", "fit", "decide"} <= names  # the parser found them
    missing = sorted(n for n in names if not hasattr(bayesmix, n))
    assert not missing, f"README's Python API names not exported by bayesmix: {missing}"


def test_api_name_parser_catches_an_unknown_name():
    """Negative control: a made-up name in an API section is found and is not exported."""
    section = readme_section("Python API", "## Python API\n\nFrom `bayesmix`:\n\n"
                             "- `load_runs(source)`: a `RunTable`, see `RunTable.frame`.\n"
                             "- `no_such_function(x)`: ...\n\n```python\nfrom bayesmix import "
                             "fit, also_missing\nbayesmix.decide\n```\n## Next\n- `other`\n")
    names = api_names(section)
    assert names == {"load_runs", "RunTable", "no_such_function", "fit", "also_missing",
                     "decide"}
    assert sorted(n for n in names if not hasattr(bayesmix, n)) == ["also_missing",
                                                                     "no_such_function"]


def readme_law_rows(text: str | None = None) -> tuple[int, dict[str, tuple[int, str]]]:
    """The README's law table: ``(k, {name: (count at k, formula in k)})``.

    The table's parameters column reads ``count (formula)``, e.g. ``11 (5 + 2k)``; the
    line before the table says for which ``k`` the counts are (``k = 3``).
    """
    section = readme_section("Laws", text)
    k_match = re.search(r"for k = (\d+)", section)
    assert k_match, "the Laws section does not say for which k its counts are"
    rows: dict[str, tuple[int, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        count = re.fullmatch(r"(\d+) \((.+)\)", cells[1])
        assert count, f"law {name}: parameters cell {cells[1]!r} is not 'count (formula)'"
        rows[name] = (int(count.group(1)), count.group(2))
    return int(k_match.group(1)), rows


def formula_at(formula: str, k: int) -> int:
    """Evaluate a count formula of ``bayesmix laws`` (``5``, ``5 + 2k``, ``1 + k``) at k."""
    match = re.fullmatch(r"(\d+)(?: \+ (\d*)k)?", formula.strip())
    if match is None:
        raise AssertionError(f"cannot read the count formula {formula!r}")
    slope = int(match.group(2) or 1) if "k" in formula else 0
    return int(match.group(1)) + slope * k


@pytest.fixture(scope="module")
def laws_json():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["laws", "--json"]) == 0
    return {row["name"]: row for row in json.loads(out.getvalue())}


def check_law_table(k: int, rows: dict[str, tuple[int, str]], laws: dict[str, dict]) -> list:
    """Disagreements between the README's table and ``bayesmix laws --json``."""
    problems = []
    if set(rows) != set(laws):
        problems.append(f"names: README {sorted(rows)} against laws {sorted(laws)}")
    for name in sorted(set(rows) & set(laws)):
        count, formula = rows[name]
        if formula != laws[name]["parameters"]:
            problems.append(f"{name}: formula {formula!r} against {laws[name]['parameters']!r}")
        if count != formula_at(laws[name]["parameters"], k):
            problems.append(f"{name}: {count} parameters at k = {k} against "
                            f"{formula_at(laws[name]['parameters'], k)}")
    return problems


def test_readme_law_table_matches_bayesmix_laws(laws_json):
    k, rows = readme_law_rows()
    assert len(rows) >= 10  # the parser read the table
    assert not check_law_table(k, rows, laws_json)


def test_law_table_check_catches_a_wrong_count(laws_json):
    """Negative control: one wrong count, one missing law are both reported."""
    k, rows = readme_law_rows()
    name = "additive"
    count, formula = rows[name]
    wrong = {**rows, name: (count + 1, formula)}
    del wrong["chinchilla"]
    problems = check_law_table(k, wrong, laws_json)
    assert any(p.startswith("names:") for p in problems)
    assert any(p.startswith(f"{name}: {count + 1} parameters") for p in problems)
