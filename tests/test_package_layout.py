"""The package's shape: layers that point down, wings that map their part of the book, no copies.

The layers are read from the table in ``CONTRIBUTING.md`` (so the page and the check cannot
drift); every import of every module is parsed with :mod:`ast`, including imports inside
functions, and checked against them.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llm_lessons"
MAX_CORE_MODULES = 20  # the flat core: one module per concept of chapters 1-5
MAX_WINGS = 8  # one per large part of the book, named in CONTRIBUTING.md


def module_name(path: Path, root: Path) -> str:
    """``llm_lessons/evaluation/likelihood.py`` -> ``evaluation.likelihood``; a package's
    ``__init__.py`` -> the package's name (``""`` for the top-level package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, known: set[str], package: str = "llm_lessons") -> set[str]:
    """The package modules ``source`` imports, wherever the import statement sits.

    ``from llm_lessons.evaluation import likelihood`` names the module ``evaluation.likelihood``;
    ``from llm_lessons.gpt import GPT`` names ``gpt``.

    >>> sorted(imports_of("from llm_lessons.gpt import GPT\\ndef f():\\n    import llm_lessons.bert",
    ...                   {"gpt", "bert"}))
    ['bert', 'gpt']
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError("relative imports hide the layer they reach into: use absolute ones")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            base = node.module[len(package) + 1:]
            for alias in node.names:
                child = f"{base}.{alias.name}" if base else alias.name
                found.add(child if child in known else base)
        elif isinstance(node, ast.Import):
            found |= {a.name[len(package) + 1:] for a in node.names if a.name.startswith(package + ".")}
    return found - {""}


def layer_table(text: str) -> dict[str, int]:
    """Rows ``| 5 | `training`, `checkpoint` | ... |`` of CONTRIBUTING.md -> {name: layer}."""
    table = {}
    for number, names in re.findall(r"^\s*\|\s*(\d+)\s*\|([^|]*)\|", text, flags=re.M):
        for name in re.findall(r"`([a-z_]+)/?`", names):
            assert name not in table, f"{name} is listed in two layers"
            table[name] = int(number)
    return table


def layer_of(module: str, table: dict[str, int]) -> int:
    """A wing's modules share the wing's layer: ``evaluation.likelihood`` is ``evaluation``'s."""
    top = module.split(".")[0]
    if top not in table:
        raise AssertionError(f"llm_lessons.{module} is in no layer: add it to CONTRIBUTING.md's table")
    return table[top]


def upward_imports(graph: dict[str, set[str]], table: dict[str, int]) -> list[str]:
    """Every import from a higher layer, as ``"a (layer 3) imports b (layer 5)"``."""
    return sorted(f"{a} (layer {layer_of(a, table)}) imports {b} (layer {layer_of(b, table)})"
                  for a, targets in graph.items() for b in targets
                  if layer_of(b, table) > layer_of(a, table))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def code_lines(text: str) -> list[str]:
    """The lines that do something: stripped, without blank lines, comment-only lines, import
    statements and docstrings (as pylint's duplicate-code check ignores them), so re-indenting
    or re-commenting a copy does not hide it."""
    skip = set()
    for node in ast.walk(ast.parse(text)):
        is_doc = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str))
        if is_doc or isinstance(node, (ast.Import, ast.ImportFrom)):
            skip.update(range(node.lineno, node.end_lineno + 1))
    lines = text.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:  # cut the comment off its line
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return [s for n, s in enumerate((line.strip() for line in lines), start=1) if s and n not in skip]


def shared_blocks(a: str, b: str, size: int = 6) -> list[list[str]]:
    """Runs of ``size`` consecutive code lines (:func:`code_lines`) found in both texts."""
    la, lb = code_lines(a), code_lines(b)
    runs_b = {tuple(lb[i:i + size]) for i in range(len(lb) - size + 1)}
    return [la[i:i + size] for i in range(len(la) - size + 1) if tuple(la[i:i + size]) in runs_b]


def package_graph() -> tuple[dict[str, set[str]], dict[str, Path]]:
    files = {module_name(p, PACKAGE): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph = {m: imports_of(p.read_text(encoding="utf-8"), known) - {m} for m, p in files.items() if m}
    return graph, files


# ---------------------------------------------------------------------------------------------
# The checks themselves, each first shown to catch a planted fault.

TABLE = {"validation": 1, "attention": 3, "gpt": 4, "evaluation": 7}


def test_an_upward_import_is_caught():
    graph = {"attention": {"validation"}, "gpt": {"attention", "evaluation.likelihood"}}
    assert upward_imports(graph, TABLE) == ["gpt (layer 4) imports evaluation.likelihood (layer 7)"]
    assert upward_imports({"gpt": {"attention"}, "evaluation.probe": {"gpt"}}, TABLE) == []


def test_an_unlisted_module_and_a_cycle_are_caught():
    with pytest.raises(AssertionError, match="llm_lessons.newthing is in no layer"):
        upward_imports({"newthing": {"gpt"}}, TABLE)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imports_inside_functions_and_relative_imports_count():
    source = "def f():\n    from llm_lessons.evaluation import likelihood\n"
    assert imports_of(source, {"evaluation", "evaluation.likelihood"}) == {"evaluation.likelihood"}
    with pytest.raises(AssertionError, match="relative imports"):
        imports_of("from .utils import x\n", set())


def test_a_copied_block_is_caught_even_reindented():
    body = "\n".join(f"x{i} = {i}" for i in range(6))
    indented = "if True:\n" + "\n".join("    " + line + "  # moved" for line in body.splitlines())
    assert len(shared_blocks("a = 1\n" + body, '"""doc"""\n' + indented)) == 1
    assert shared_blocks(body, "\n".join(body.splitlines()[:5])) == []
    imports = "import math\nimport os\nimport re\nimport sys\nimport time\nimport json\n"
    assert shared_blocks(imports + "a = 1\n", imports + "b = 2\n") == []


# ---------------------------------------------------------------------------------------------
# The package as it is.

def test_no_module_imports_from_a_higher_layer():
    table = layer_table((ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"))
    graph, _ = package_graph()
    assert upward_imports(graph, table) == []


def test_no_import_cycles():
    graph, _ = package_graph()
    assert find_cycle(graph) is None


def test_every_table_entry_exists():
    table = layer_table((ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"))
    missing = [n for n in table if not (PACKAGE / f"{n}.py").exists() and not (PACKAGE / n).is_dir()]
    assert missing == []


def test_the_package_folder_reads_at_a_glance():
    tracked = subprocess.run(["git", "ls-files", "llm_lessons"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    entries = {Path(p).parts[1] for p in tracked}
    core = sorted(e for e in entries if e.endswith(".py") and e != "__init__.py")
    wings = sorted(e for e in entries if (PACKAGE / e).is_dir())
    assert 0 < len(core) <= MAX_CORE_MODULES, core
    assert len(wings) <= MAX_WINGS, wings
    assert set(entries) == {*core, *wings, "__init__.py"}, sorted(entries)  # nothing else at the top
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert all(f"`{wing}/`" in contributing for wing in wings), "a wing CONTRIBUTING.md does not name"


def test_every_wing_docstring_maps_its_modules():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        modules = [p.stem for p in sorted(init.parent.glob("*.py")) if p.stem != "__init__"]
        wing = init.parent.name
        unmapped = [m for m in modules if f"llm_lessons.{wing}.{m}`" not in doc]
        assert unmapped == [], f"{wing}/__init__.py does not list {unmapped}"


def test_gpt_and_bert_share_no_block_of_six_lines():
    gpt = (PACKAGE / "gpt.py").read_text(encoding="utf-8")
    bert = (PACKAGE / "bert.py").read_text(encoding="utf-8")
    assert shared_blocks(gpt, bert) == []
