"""The public API: every name a package exports exists, and the layering holds."""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGES = ["lmech", "lmech.measure", "lmech.theory", "lmech.train", "lmech.data", "lmech.models", "lmech.laws", "lmech.lab"]
SRC = Path(__file__).resolve().parents[1] / "src" / "lmech"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_exists(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} exports nothing"
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


@pytest.mark.parametrize("layer", ["theory", "measure"])
def test_lower_layers_never_import_upper_ones(layer):
    forbidden = ("laws", "lab", "cli")
    for path in (SRC / layer).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                parts = module.lstrip(".").split(".")
                assert not (node.level >= 2 and parts[0] in forbidden), f"{path.name} imports {module}"
                assert not (module.startswith("lmech.") and parts[1] in forbidden), f"{path.name} imports {module}"


def test_readme_python_snippets_run():
    """The README's code is what a new user pastes first: every ```python block runs, in order."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["lam"] > 0 and namespace["theta"].shape == (256, 256)
