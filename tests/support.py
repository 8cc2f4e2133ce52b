"""Helpers shared by several test modules (importable because pyproject.toml
puts ``tests/`` on pytest's ``pythonpath``)."""

import os
import pathlib
import shutil
import subprocess
import threading

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD_OUTPUTS = shutil.ignore_patterns(
    "build", "dist", "*.egg-info", "*.so", "*.pyd", "*.c", "*.cpp", "__pycache__", ".*"
)


def run(cmd, **kwargs):
    """Run a command; fail the test with its output's tail unless it succeeds."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def clean_env(**extra):
    """This environment without what would redirect a nested run's fastbp."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTBP_BACKEND", "PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update(extra)
    return env


def source_tree(target):
    """The files a fresh clone would have: git's tracked files when this is a
    checkout, otherwise the tree without build outputs (an unpacked sdist)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        files = run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
        for name in filter(None, files):
            if (ROOT / name).is_file():  # skip deleted-but-tracked paths
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)
    else:
        shutil.copytree(ROOT, target, ignore=BUILD_OUTPUTS, dirs_exist_ok=True)


def run_in_threads(functions, timeout=300.0):
    """Start every function at once (a barrier); return their results, or
    re-raise the first error.  A thread still running after ``timeout``
    seconds (a deadlock) fails the test instead of hanging the suite."""
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def work(i, f):
        try:
            barrier.wait()
            results[i] = f()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i, f), daemon=True) for i, f in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), f"a thread did not finish within {timeout} s"
    if errors:
        raise errors[0]
    return results
