"""The house in order: dependencies run one way, function-level imports say why, the lab and
the tests never ship, and the two version files agree."""

import ast
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import grimp
import pytest

from maintenance import updates

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("appliance", "core", "network", "clusters", "healthchecks", "maintenance", "ha",
           "reports", "runner")


def shipped_modules():
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def function_level_imports(path):
    """(line number, line) of every import inside a function or class body."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and inner is not node:
                    found.append((inner.lineno, lines[inner.lineno - 1]))
    return sorted(set(found))


def test_every_function_level_import_says_why_on_its_line():
    unexplained = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                   for path in shipped_modules()
                   for number, line in function_level_imports(path) if "#" not in line]
    assert unexplained == [], "import at module level, or say why on the line"


def import_cycles(graph):
    """Every group of modules that import each other, directly or through others (Tarjan's
    strongly connected components), function-level imports included."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_a_cycle_through_three_modules_is_found():
    graph = grimp.ImportGraph()
    for importer, imported in (("a.x", "a.y"), ("a.y", "b.z"), ("b.z", "a.x"), ("b.z", "c")):
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["a.x", "a.y", "b.z"]]


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph(*SHIPPED, "lab", cache_dir=None)
    assert import_cycles(graph) == []


def run_import_linter(root):
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = run_import_linter(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize(("module", "imported"), [
    ("core/audit.py", "clusters.models"),  # core imports a menu app: a layer broken
    ("network/models.py", "clusters.models"),  # network imports clusters: a cycle
    ("clusters/views.py", "network.netlink"),  # a view reaches the netlink seam itself
    ("runner/stack.py", "lab"),  # shipped code imports the lab
])
def test_the_contracts_fail_when_a_forbidden_import_is_added(tmp_path, module, imported):
    copy = tmp_path / "tree"
    for name in updates.release_files(ROOT, untracked=True):
        source = ROOT / name
        if source.is_file() and (name.endswith(".py") or name == "pyproject.toml"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes(source.read_bytes())
    target = copy / module
    target.write_text(target.read_text() + f"\nimport {imported}  # noqa: E402, F401\n")
    result = run_import_linter(copy)
    importer = module.removesuffix(".py").replace("/", ".")
    assert result.returncode != 0
    assert f"{importer} -> {imported}" in result.stdout, result.stdout[-3000:]


def test_a_release_holds_no_lab_tests_or_benchmarks(tmp_path):
    key = tmp_path / "release.pem"
    updates.make_key(key, tmp_path / "release.pub")
    archive = updates.build_release(ROOT, "9.9.9", "0.1.0", "", key.read_bytes(), tmp_path,
                                    files=updates.release_files(ROOT, untracked=True))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "release/runner/stack.py" in names and "release/core/version.py" in names
    leaked = [n for n in names if n.startswith(("release/lab/", "release/tests/",
                                                "release/bench/"))]
    assert leaked == []


def test_both_version_files_say_the_same_version():
    def version(name):
        return re.search(r'__version__ = "([^"]+)"', (ROOT / name).read_text()).group(1)

    assert version("core/version.py") == version("appliance/version.py")
