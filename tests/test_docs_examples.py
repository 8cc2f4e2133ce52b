"""Every example in README.md and docs/ runs, and prints what it shows.

The pages are Markdown (MyST) and reStructuredText.  In Markdown, every
``pycon`` (or ``python``) fenced block is a doctest: ``>>>`` lines with the
output they print.  Every ``console`` block is a shell session: each ``$ ...``
line is a command, run in a subprocess, and the lines after it, up to the next
command, are what it prints on stdout (a command that fails shows its stderr
and then ``[exit status N]``).  ``sh`` blocks are commands shown, not run: they
show no output.  A page's examples run in page order, in one namespace and
one temporary working directory, so a later block can use what an earlier one
made.  In reStructuredText the ``>>>`` lines are doctests as they stand.

The docstrings of the public modules are doctests too (``doctest.DocTestFinder``).
Outputs are compared with ``NORMALIZE_WHITESPACE`` and ``ELLIPSIS``, with NumPy's
print options fixed to their defaults, against the package as imported here.
"""

import doctest
import importlib
import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastbp

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted(
    path
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "docs").rglob("*.rst")]
    if path.is_file() and "_build" not in path.relative_to(ROOT).parts
)
PUBLIC_MODULES = [
    "fastbp",
    "fastbp.network",
    "fastbp.optimizers",
    "fastbp.backends",
    "fastbp.datasets",
    "fastbp.interop",
    "fastbp.sklearn",
    "fastbp.cli",
]
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
# NumPy's own defaults, fixed so that an example's output does not depend on
# what ran before it.
PRINT_OPTIONS = dict(
    precision=8,
    threshold=1000,
    edgeitems=3,
    linewidth=75,
    suppress=False,
    nanstr="nan",
    infstr="inf",
    sign="-",
    floatmode="maxprec",
    legacy=False,
)
# A fenced block: its indent, fence and info string, its body, up to the
# closing fence of the same indent and length.
FENCE = re.compile(
    r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ ]*$",
    re.M | re.S,
)
DOCTEST_LANGUAGES = {"pycon", "python", "py"}
SHELL_RUN, SHELL_SHOWN = {"console"}, {"sh", "bash", "shell"}
IMPORT = re.compile(r"^\s*(?:>>>|\.\.\.)\s+(?:import|from)\s+([A-Za-z_][\w]*)", re.M)


def blocks(text):
    """``(language, first body line (0-based), body lines)`` of each fenced block."""
    for match in FENCE.finditer(text):
        language = match["info"].strip().split()[0] if match["info"].strip() else ""
        first = text.count("\n", 0, match.start("body"))
        indent = len(match["indent"])
        body = [line[indent:] for line in match["body"].splitlines()]
        yield language, first, body


def doctest_text(path):
    """The page as one doctest, each example on its own line of the page (the
    rest blank), so a failure names the page's line.  Raises ``AssertionError``
    for an example block that would not be checked."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".rst":
        return text
    lines = [""] * (text.count("\n") + 1)
    for language, first, body in blocks(text):
        where = f"{path.relative_to(ROOT)}:{first}"
        if language in DOCTEST_LANGUAGES:
            assert any(line.lstrip().startswith(">>>") for line in body), (
                f"{where}: a {language} block without '>>>' examples is not tested: write it as a doctest"
            )
            lines[first : first + len(body)] = body
        elif language in SHELL_RUN:
            for i, line in enumerate(body):
                if line.startswith("$ "):
                    lines[first + i] = f">>> shell({line[2:]!r})"
                else:
                    lines[first + i] = line
        elif language in SHELL_SHOWN:
            shown = [line for line in body if line.startswith("$ ")]
            assert not shown, f"{where}: an {language} block is not run; show a session as a console block"
    return "\n".join(lines)


def command(line):
    """``(environment, argv)`` for one shown command: ``VAR=value`` prefixes,
    then ``fastbp ...`` or ``python -m fastbp ...``, run by this Python."""
    words = shlex.split(line, comments=True)
    environment = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        environment[name] = value
    if words[:1] == ["fastbp"]:
        # The console script of this Python when it is installed (it names
        # itself "fastbp" in its messages), else the same entry point by -m.
        script = shutil.which("fastbp", path=os.path.dirname(sys.executable))
        return environment, [*([script] if script else [sys.executable, "-m", "fastbp"]), *words[1:]]
    if words[:3] == ["python", "-m", "fastbp"]:
        return environment, [sys.executable, "-m", "fastbp", *words[3:]]
    raise AssertionError(f"a console example runs fastbp only, not: {line}")


def shell(line):
    """Run one shown command in the working directory and print what it shows."""
    extra, argv = command(line)
    # The fastbp this test imports, whatever the working directory.
    package_parent = str(pathlib.Path(fastbp.__file__).resolve().parents[1])
    environment = dict(os.environ)  # without FASTBP_BACKEND: see documented_backend
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    environment.update(extra)
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=600)
    print(result.stdout, end="")
    if result.returncode:
        print(result.stderr, end="")
        print(f"[exit status {result.returncode}]")


def missing_modules(source):
    """The top-level modules the examples import that are not installed."""
    names = sorted(set(IMPORT.findall(source)))
    return [name for name in names if importlib.util.find_spec(name) is None]


@pytest.fixture(autouse=True)
def documented_backend(monkeypatch):
    """The pages show the default backend: run them on it, whatever
    ``FASTBP_BACKEND`` says (the reference gives the same digits, but
    names itself in a network's repr)."""
    monkeypatch.delenv("FASTBP_BACKEND", raising=False)
    try:
        fastbp.get_backend("cython")
    except ImportError as error:
        pytest.skip(f"the examples show the compiled backend, which does not load here: {error}")


def run(test, capsys):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with np.printoptions(**PRINT_OPTIONS):
        runner.run(test, out=sys.stdout.write)
    report = capsys.readouterr().out
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples failed:\n{report}"
    return runner.tries


@pytest.mark.skipif(not PAGES, reason="README.md and docs/ are not beside these tests (an installed copy)")
@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples(path, tmp_path, monkeypatch, capsys):
    source = doctest_text(path)
    missing = missing_modules(source)
    if missing:
        pytest.skip(f"the examples need {', '.join(missing)}")
    monkeypatch.chdir(tmp_path)
    globs = {"shell": shell}
    test = doctest.DocTestParser().get_doctest(source, globs, str(path.relative_to(ROOT)), str(path), 0)
    if test.examples:
        run(test, capsys)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch, capsys):
    if name == "fastbp.sklearn":
        pytest.importorskip("sklearn", reason="fastbp.sklearn needs scikit-learn")
    module = importlib.import_module(name)
    monkeypatch.chdir(tmp_path)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        run(test, capsys)


def test_pages_are_found():
    """The collection above sees the pages it should (a changed layout would skip them all)."""
    if not PAGES:
        pytest.skip("README.md and docs/ are not beside these tests (an installed copy)")
    names = {str(p.relative_to(ROOT)) for p in PAGES}
    assert {"README.md", "docs/index.md"} <= names
    assert sum(1 for p in PAGES if ">>>" in p.read_text(encoding="utf-8")) >= 2
