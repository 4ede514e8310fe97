"""The package's layers import only downwards: the model and the RTL build on the specification alone."""

import ast
import pathlib

import pytest

import tinycl_hdl

PACKAGE = pathlib.Path(tinycl_hdl.__file__).resolve().parent

#: Layer -> the other layers it may import.
ALLOWED = {
    "spec": set(),
    "model": {"spec"},
    "rtl": {"spec"},
    "host": {"spec", "model"},
    "flows": {"spec", "model", "rtl", "host"},
}


def imported_layers(module: tuple, source: str) -> set:
    """The project's layers that ``source``, the module at ``module`` (its path parts below the
    package), imports anywhere in the file."""
    layers = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[:-1])[:len(module) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                if not node.module:
                    target = base + [alias.name for alias in node.names][:1]
            elif node.module and node.module.split(".")[0] == "tinycl_hdl":
                target = node.module.split(".")[1:]
            else:
                continue
        elif isinstance(node, ast.Import):
            target = next((a.name.split(".")[1:] for a in node.names if a.name.startswith("tinycl_hdl.")), None)
            if target is None:
                continue
        else:
            continue
        if target:
            layers.add(target[0])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below(layer):
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        module = path.relative_to(PACKAGE).with_suffix("").parts
        outside = imported_layers(module, path.read_text()) - ALLOWED[layer] - {layer}
        assert not outside, f"{path.relative_to(PACKAGE)} imports {sorted(outside)}"


@pytest.mark.parametrize("source", ["from ..model.golden import Weights", "from .. import model",
                                    "    from tinycl_hdl.model import golden", "import tinycl_hdl.model.golden"])
def test_the_check_sees_a_forbidden_import(source):
    assert imported_layers(("rtl", "probe"), f"def f():\n{source}\n" if source[0] == " " else source) == {"model"}
