"""Sphinx configuration of the TinyCL-HDL documentation (``make docs``)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

project = "TinyCL-HDL"
author = "TinyCL-HDL developers"
copyright = "2026, TinyCL-HDL developers"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode", "numpydoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "TinyCL-HDL"

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
# The classes document their members in the docstring (numpydoc "Members"/"Attributes").
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
# Amaranth's wiring.Component members are ports: autodoc lists them from the signature.
suppress_warnings = ["myst.header"]
nitpicky = False


def _write_register_map(app):
    """The register map of the ``digits`` preset, generated as the RTL's is."""
    from tinycl_hdl.spec.catalogue import PRESETS
    from tinycl_hdl.spec.regmap import RegisterMap

    out = pathlib.Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    text = "# Register map of the `digits` preset\n\n" + RegisterMap(PRESETS["digits"]).to_markdown()
    path = out / "regmap-digits.md"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def setup(app):
    app.connect("builder-inited", _write_register_map)
