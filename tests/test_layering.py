"""The layering the plug-in promise rests on: drivers import nothing from the application, and no module of
drivers/ or workstation/ takes part in an import cycle (issue 16)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import drivers

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("drivers", "workstation")


def _driver_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(drivers.__path__, "drivers."))


def test_every_driver_module_imports_without_the_application() -> None:
    modules = _driver_modules()
    assert "drivers.events" in modules and "drivers.testing" in modules and "drivers.emulators.cli" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'workstation' or m.startswith('workstation.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], "drivers/ imported the application"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str, known: set[str], type_checking: bool = False) -> set[str]:
    """The project modules `name` imports when it is imported: module-level statements, not those under
    `if TYPE_CHECKING:` (unless `type_checking`) and not those inside functions (run later, once every module is
    loaded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(target: str) -> None:
        while target and target not in known:  # `from a.b import c`: c may be a name in a.b, not a module
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    resolve(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    resolve(f"{base}.{alias.name}" if base else alias.name)
            elif isinstance(node, ast.If):
                if type_checking or not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return found


def import_graph(packages: tuple[str, ...] = PACKAGES, type_checking: bool = False) -> dict[str, set[str]]:
    paths = {_module_name(p): p for pkg in packages for p in (ROOT / pkg).rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, name, known, type_checking) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def test_no_import_cycle_in_drivers_or_workstation() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "drivers.events" in graph["drivers.base"]
    assert cycles(graph) == [], "modules that import each other (move the shared part into a third module)"


def test_no_cycle_in_drivers_even_for_the_type_checker() -> None:
    """A driver package's modules do not lean on each other through `if TYPE_CHECKING:` either (the emulator base
    and its commands mixin, the device base and its frame intake used to): each mixin declares what it needs."""
    graph = import_graph(("drivers",), type_checking=True)
    assert "drivers.emulators.base" not in graph["drivers.emulators.commands"]
    assert "drivers.base" not in graph["drivers.frames"] and "drivers.base" not in graph["drivers.link"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_drivers_import_nothing_from_the_application_statically() -> None:
    """Lazy imports inside functions too: the subprocess test only sees what importing runs."""
    for path in (ROOT / "drivers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(n == "workstation" or n.startswith("workstation.") for n in names), path


def _application_modules_outside_ui() -> list[str]:
    names = []
    for path in sorted((ROOT / "workstation").rglob("*.py")):
        name = _module_name(path)
        if name.startswith("workstation.store.alembic."):
            continue  # Alembic's scripts (env.py, versions/): run by Alembic with its context, never imported
        if name != "workstation.ui" and not name.startswith("workstation.ui."):
            names.append(name)
    return names


def test_nothing_outside_ui_imports_qt() -> None:
    """ARCHITECTURE.md: only `ui/` imports Qt. Importing every other module of the application and the drivers, in a
    fresh interpreter, loads neither PyQt6 nor pyqtgraph (a command that opens a window imports ui/ when it runs)."""
    modules = _application_modules_outside_ui() + _driver_modules()
    assert "workstation.session.safety" in modules and "workstation.synthetic_source" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('PyQt6', 'pyqtgraph'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], "a module outside workstation/ui/ imported Qt"


# STYLE.md: modules under ~475 lines. Known exceptions, each with its reason: they fail this test once they grow.
MAX_MODULE_LINES = 480
OVERSIZED = {
    "workstation/ui/patient_view.py": 550,  # the patient page: to split by section when it next changes
}


def test_modules_stay_short() -> None:
    long = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > OVERSIZED.get(rel, MAX_MODULE_LINES):
                long[rel] = n
    assert long == {}, "split these modules by responsibility"


SESSION_MODULES = ("audit", "audit_frames", "course_lease", "journal", "kind_rules", "outcome", "planning", "reset",
                   "rig", "roles", "runner", "safety", "scenario", "session", "step_runs", "steps", "visit", "waiting")


def test_the_session_room_holds_what_runs_a_session_and_the_top_no_longer_does() -> None:
    """issue 16: `workstation/session/` holds session, safety, rig, runner, scenario, the visit service and their
    helpers; no copy or shim is left at the old paths, and the synthetic data source is not in ui/."""
    room = ROOT / "workstation" / "session"
    assert sorted(p.stem for p in room.glob("*.py") if p.stem != "__init__") == sorted(SESSION_MODULES)
    for name in SESSION_MODULES:
        assert not (ROOT / "workstation" / f"{name}.py").exists(), name
    assert not (ROOT / "workstation" / "ui" / "sources.py").exists()
    graph = import_graph()
    assert "workstation.session.safety" in graph["workstation.session.rig"]
    assert not any(n.startswith("workstation.ui") for n in graph["workstation.synthetic_source"])
