"""The house's shape (STYLE.md, the renovation issue): checked on the source, so it cannot drift.

* ``tasks/`` imports no Prefect (orchestration stays in ``flows/``), and every Prefect
  task is defined in ``flows/steps.py``;
* no module is over 300 lines (word lists excepted);
* ``round_flow`` reads as the round in at most 40 lines;
* crowdloop's modules import each other without a cycle (imports inside functions count);
* parquet files are read through ``files.read_parquet``, never ``pd.read_parquet`` (which can
  abort the process as it exits: see that function).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"crowdloop": ROOT / "crowdloop", "crowdloop.flows": ROOT / "flows", "crowdloop.tasks": ROOT / "tasks"}
WORD_LISTS = {"tasks/demo_text.py"}


def _modules() -> dict[str, Path]:
    """Every crowdloop module name -> its file."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(path: Path, name: str) -> set[str]:
    """The crowdloop modules ``name`` (at ``path``) imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(MODULES)
            out |= submodules  # `from pkg import module` needs the module; any other name, pkg itself
            if len(submodules) < len(node.names):
                out.add(base)
    return {m for m in out if m in MODULES and m != name}


def test_tasks_import_no_prefect_and_every_task_is_defined_in_flows_steps():
    offenders = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        prefect = any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                      any(m.split(".")[0] == "prefect" for m in
                          ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]))
                      for n in ast.walk(tree))
        if prefect and name.startswith("crowdloop.tasks"):
            offenders.append(f"{name} imports prefect")
        decorators = [d for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for d in n.decorator_list]
        tasks = [d for d in decorators if (getattr(d, "id", None) or getattr(getattr(d, "func", None), "id", None))
                 == "task"]
        if tasks and name != "crowdloop.flows.steps":
            offenders.append(f"{name} defines a Prefect task")
    assert offenders == []


def test_no_module_is_over_300_lines_except_word_lists():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > 300 and str(p.relative_to(ROOT)) not in WORD_LISTS}
    assert long == {}


def test_parquet_is_read_through_files_read_parquet():
    sources = [*MODULES.values(), *(ROOT / "benchmarks").glob("*.py"),
               *(p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_read_parquet.py")]
    call = "pd.read_" + "parquet("  # not spelled out here, so this file does not find itself
    assert [str(p.relative_to(ROOT)) for p in sources if call in p.read_text()] == []


def test_round_flow_is_the_round_in_at_most_40_lines():
    from crowdloop.flows.round import round_flow

    source = inspect.getsource(round_flow.fn)
    assert len(source.splitlines()) <= 40 + 1  # the decorator line


def test_crowdloop_modules_import_each_other_without_a_cycle():
    graph = {name: _imports(path, name) for name, path in MODULES.items()}
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_cycle_check_would_see_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: two modules importing each other inside functions are a cycle."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from crowdloop.fake import b\n")
    b.write_text("import crowdloop.fake.a\n")
    monkeypatch.setitem(MODULES, "crowdloop.fake.a", a)
    monkeypatch.setitem(MODULES, "crowdloop.fake.b", b)
    assert _imports(a, "crowdloop.fake.a") == {"crowdloop.fake.b"}
    assert _imports(b, "crowdloop.fake.b") == {"crowdloop.fake.a"}


@pytest.mark.parametrize("old", ["labelled", "unlabelled", "labelling"])
def test_one_spelling_labeled(old):
    """The libraries crowdloop uses say "labeled"; so does crowdloop (legacy metric keys aside)."""
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in [*MODULES.values(), ROOT / "README.md", ROOT / "params.yaml"]
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if old in line.lower() and "RENAMED_METRICS" not in line]
    assert hits == []
