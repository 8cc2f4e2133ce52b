"""Sphinx configuration: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

The pages are MyST Markdown (myst-parser) and the API reference is generated
from the docstrings (autodoc, with numpydoc).  The build imports ``fastbp``,
built in place or installed, and needs no network access (no intersphinx).
"""

import fastbp

project = "fastbp"
author = "The fastbp developers"
copyright = "the fastbp developers"
release = fastbp.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "numpydoc",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Headings get anchors, so pages can link to a section: [text](page.md#heading).
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"fastbp {release}"
html_theme_options = {"navigation_with_keys": False}
