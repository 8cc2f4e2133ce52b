"""Structure: fastbp's modules import one another without a cycle.

Every module of the package the tests import is parsed (``ast``), and every
import in it, at any depth (a lazy import inside a function counts as much as
one at the top), relative or absolute, gives an edge of the module graph:

* ``import fastbp.x`` and ``from fastbp.x import y`` (or ``from .x import y``)
  lead to ``fastbp.x``;
* ``from . import x`` (or ``from fastbp import x``) leads to the submodule
  ``fastbp.x`` when there is one, else (a name defined in ``__init__.py``) to
  the package, ``fastbp``, as does ``import fastbp``;
* ``importlib.import_module("fastbp.x")`` with a constant name leads to ``fastbp.x``.

The compiled kernels' Python imports (``fastbp/_kernels*.pyx`` and the
``.pxi`` files they include) are read too where the sources are around.
Importing a submodule imports its package first, but that is no edge here:
by the time a submodule runs, its package is being imported already.

A cycle works, if at all, only through the order the modules happen to be
imported in (or a lazy import), and ``python -m fastbp`` runs ``__main__`` a
second time under another name when it is imported back: none is allowed.
"""

import ast
import importlib.machinery
import pathlib
import re

from support import ROOT, SOURCE_TREE, tomllib

import fastbp

# The sources: the checkout's when these tests sit in one (an installed
# package has no .pyx, so its compiled modules' imports cannot be read there),
# else the fastbp the tests import.
PACKAGE = ROOT / "fastbp" if SOURCE_TREE else pathlib.Path(fastbp.__file__).resolve().parent


def _module_name(path):
    return "fastbp" if path.stem == "__init__" else f"fastbp.{path.stem}"


def _code(line):
    """A line without its comment (import lines hold no strings with a ``#``)."""
    return line.split("#")[0]


def _parse_cython_imports(text):
    """The Python import statements (not ``cimport``s) of Cython source, as an ``ast`` tree."""
    statements = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not re.match(r"(from\s+\S+\s+import\s|import\s)", line) or re.search(r"\bcimport\b", line):
            continue
        statement = _code(line)
        while statement.count("(") > statement.count(")"):  # a parenthesised list of names
            number += 1
            statement += "\n" + _code(lines[number])
        statements.append(statement)
    return ast.parse("\n".join(statements))


def _sources():
    """``{module name: [ast trees of its source]}`` for the package's modules."""
    trees = {_module_name(path): [ast.parse(path.read_text(), str(path))] for path in PACKAGE.glob("*.py")}
    for pyx in PACKAGE.glob("_kernels*.pyx"):
        texts, todo = [], [pyx]
        while todo:  # the file and what it includes
            text = todo.pop().read_text()
            texts.append(text)
            todo += [PACKAGE / name for name in re.findall(r'^include\s+"([^"]+)"', text, re.MULTILINE)]
        trees[f"fastbp.{pyx.stem}"] = [_parse_cython_imports(text) for text in texts]
    # A compiled module without its source (an installed package) is still a
    # module of the package, whose own imports are unknown here.
    for path in PACKAGE.iterdir():
        suffix = next((s for s in importlib.machinery.EXTENSION_SUFFIXES if path.name.endswith(s)), None)
        if suffix:
            trees.setdefault(f"fastbp.{path.name.removesuffix(suffix)}", [])
    return trees


def _resolve(name, modules):
    """The module ``name`` imports: itself if it is one of the package's, else
    its longest dotted prefix that is; None outside the package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(tree, modules):
    """The package's modules a module's source imports, at any depth."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # Every module of fastbp sits directly in the package: level 1 is fastbp.
            base = "fastbp" if node.level else ""
            if node.module:
                base = f"{base}.{node.module}" if base else node.module
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else _resolve(base, modules))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(_resolve(node.args[0].value, modules))
    return found - {None}


def import_graph():
    """``{module: set of the package's modules it imports}``."""
    sources = _sources()
    return {
        module: set().union(*(_imports(tree, sources) for tree in trees)) - {module}
        for module, trees in sources.items()
    }


def find_cycle(graph):
    """One cycle of ``graph`` as a list of modules (the first repeated at the end), or None."""
    done, path, on_path = set(), [], set()

    def visit(module):
        path.append(module)
        on_path.add(module)
        for target in sorted(graph.get(module, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        on_path.discard(path.pop())
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def cycles(graph):
    """``(one cycle, all the modules that reach one another)`` for each
    strongly connected part of ``graph`` that has a cycle."""
    found = []
    remaining = {module: set(targets) for module, targets in graph.items()}
    while (cycle := find_cycle(remaining)) is not None:
        # The cycle's modules, and every module they reach that reaches them back.
        part = _reaching(remaining, cycle[0]) & _reaching(_reversed(remaining), cycle[0])
        found.append((cycle, sorted(part)))
        remaining = {m: t - part for m, t in remaining.items() if m not in part}
    return found


def _reaching(graph, start):
    seen, todo = {start}, [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _reversed(graph):
    result = {module: set() for module in graph}
    for module, targets in graph.items():
        for target in targets:
            result.setdefault(target, set()).add(module)
    return result


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "fastbp" in graph and "fastbp.network" in graph and "fastbp.cli" in graph
    assert "fastbp.network" in graph["fastbp"]  # from .network import Network
    assert "fastbp._model" in graph["fastbp.network"]  # from . import ..., _model
    assert "fastbp.sklearn" not in graph["fastbp"]  # import fastbp never imports scikit-learn
    assert "fastbp._kernels" in graph["fastbp.backends"]  # importlib.import_module("fastbp._kernels")
    if (PACKAGE / "_kernels.pyx").is_file():  # the Cython sources are around
        assert "fastbp._layout" in graph["fastbp._kernels"]  # a parenthesised import in Cython
        assert "fastbp._errors" in graph["fastbp._kernels"]  # from the included _door.pxi


def test_find_cycle_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}) == ["b", "b2", "b"]
    two = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}}
    assert cycles(two) == [(["a", "b", "a"], ["a", "b"]), (["c", "d", "c"], ["c", "d"])]
    assert cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}) == [(["a", "b", "a"], ["a", "b", "c"])]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(
        f"{' -> '.join(cycle)} (these modules all import one another, directly or not: {', '.join(part)})"
        for cycle, part in found
    )


def test_the_version_is_written_once():
    from fastbp import _version

    assert fastbp.__version__ is _version.__version__
    if not SOURCE_TREE:
        return
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fastbp._version.__version__"}
