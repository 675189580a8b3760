"""The layering of the package (shared/DESIGN.md): a module imports only from layers below its
own, never upward or sideways into another package of its layer, and nothing reaches into
another module's private names. The layer table is data here; the test parses every module's
imports (also those inside functions: a lazy upward import is still upward)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aqforecast"

#: top-level module or package of aqforecast -> layer (DESIGN.md "Layout"). Units of one layer
#: are independent (a sideways import fails), except the ordered pairs of layers 0 and 9:
#: species uses constants, cli uses stages (the half steps).
LAYERS = {
    "constants": 0, "species": 0.5, "log": 0, "__init__": 0,
    "config": 1, "grid": 1, "kernels": 1, "parallel": 1,
    "io": 2,
    "met": 3, "emissions": 3, "chemistry": 3, "observations": 3,
    "transport": 4, "tagging": 4,
    "forecast": 5, "verification": 5,
    "products": 6,
    "assimilation": 7, "inversion": 7, "scenarios": 7,
    "bulletin": 8,
    "stages": 9, "cli": 9.5,
}


def _unit(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, rel: Path):
    """(line, imported top-level unit, imported names) of every aqforecast import in the file
    ``path``, read as the module at ``rel`` inside the package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(rel.parts[:-1])  # the module's package inside aqforecast
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "aqforecast":
                target = node.module.split(".")[1:]
            else:
                continue
            names = [a.name for a in node.names]
            if not target:  # "from . import x" at the top of the package
                for n in names:
                    yield node.lineno, n, []
            else:
                yield node.lineno, target[0], names
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "aqforecast" and len(parts) > 1:
                    yield node.lineno, parts[1], []


def _upward(path: Path, rel: Path) -> list[str]:
    me = _unit(rel)
    out = []
    for line, unit, _ in _imports(path, rel):
        if unit != me and unit in LAYERS and LAYERS[unit] >= LAYERS[me]:
            out.append(f"line {line}: {me} (layer {LAYERS[me]}) imports {unit} "
                       f"(layer {LAYERS[unit]})")
    return out


def _modules():
    return sorted(p.relative_to(SRC) for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in _modules()}
    assert units <= set(LAYERS), f"add to the layer table: {sorted(units - set(LAYERS))}"


@pytest.mark.parametrize("rel", _modules(), ids=str)
def test_imports_go_downward_only(rel):
    if _unit(rel) == "__init__":
        return  # the package root imports only its version
    bad = _upward(SRC / rel, rel)
    assert not bad, f"{rel}: " + "; ".join(bad)


@pytest.mark.parametrize("rel", _modules(), ids=str)
def test_no_private_names_from_other_units(rel):
    me = _unit(rel)
    bad = [f"line {line}: {n} from {unit}" for line, unit, names in _imports(SRC / rel, rel)
           if unit != me for n in names if n.startswith("_")]
    assert not bad, f"{rel} imports private names: " + "; ".join(bad)


def test_the_checker_sees_upward_and_sideways_imports(tmp_path):
    """The test can fail: imports planted in copies of real modules are reported."""
    p = tmp_path / "grid.py"
    p.write_text((SRC / "grid.py").read_text() + "\nfrom .products import aqi  # planted\n")
    assert any("imports products" in b for b in _upward(p, Path("grid.py")))
    q = tmp_path / "provider.py"
    q.write_text((SRC / "met" / "provider.py").read_text()
                 + "\nfrom ..chemistry.photolysis import cloud_factor  # planted\n")
    assert any("imports chemistry" in b for b in _upward(q, Path("met/provider.py")))
    assert not _upward(SRC / "grid.py", Path("grid.py"))
