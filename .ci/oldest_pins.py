"""Print pip constraints that pin each runtime dependency of pyproject.toml to
the oldest release it declares (``numpy>=2.0`` -> ``numpy==2.0``), so that
.ci/run tests the oldest versions fastbp claims to support.  The bounds stay
in one place, pyproject.toml."""

import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*", requirement)
    if match is None:
        sys.exit(f"oldest_pins: cannot read a lower bound from {requirement!r} (expected 'name>=version')")
    print(f"{match[1]}=={match[2]}")
