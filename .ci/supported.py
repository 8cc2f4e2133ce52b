"""What pyproject.toml declares fastbp supports, for .ci/run; the facts stay
in one place, pyproject.toml.

    python .ci/supported.py oldest-python   # requires-python's bound: 3.10
    python .ci/supported.py newest-python   # the newest 'Python :: 3.N' classifier
    python .ci/supported.py oldest-pins     # pip constraints: numpy==2.0, ...

``oldest-pins`` pins each runtime dependency to the oldest release it
declares (``numpy>=2.0`` -> ``numpy==2.0``).
"""

import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]


def lower_bound(requirement):
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*", requirement)
    if match is None:
        sys.exit(f"supported.py: cannot read a lower bound from {requirement!r} (expected 'name>=version')")
    return match[1], match[2]


def python_versions():
    versions = [
        tuple(map(int, m[1].split(".")))
        for c in project["classifiers"]
        if (m := re.fullmatch(r"Programming Language :: Python :: (3\.[0-9]+)", c))
    ]
    if not versions:
        sys.exit("supported.py: no 'Programming Language :: Python :: 3.N' classifier")
    return sorted(versions)


(what,) = sys.argv[1:] or [""]
if what == "oldest-python":
    _, bound = lower_bound("python" + project["requires-python"])
    if tuple(map(int, bound.split("."))) != python_versions()[0]:
        sys.exit(
            f"supported.py: requires-python >={bound} but the oldest classifier is {python_versions()[0]}"
        )
    print(bound)
elif what == "newest-python":
    print(".".join(map(str, python_versions()[-1])))
elif what == "oldest-pins":
    for requirement in project["dependencies"]:
        print("{}=={}".format(*lower_bound(requirement)))
else:
    sys.exit(__doc__)
