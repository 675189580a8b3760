"""The inventory mapping file: an inventory's species and sectors to the model's.

A YAML file with two optional sections (``docs/inventory_formats.md`` has worked examples)::

    species:                  # inventory species -> model pollutant
      NOx: NOx
      PM2.5: PM25
      NO: {NOx: 1.5332}       # with a factor: NO mass x 46.0055/30.006 = NOx mass (as NO2)
      BC: null                # known and not used by the model: dropped, no warning
    sectors:                  # inventory sector -> model sector
      ENE: power
      RCO: residential
      TNR_Other: {transport: 0.7, industry: 0.3}   # split by fractions
      sum: null               # dropped (CAMS-GLOB-ANT's 'sum' is the total of the others)
      "*": other              # every sector not listed (default: keeps its own name)

Keys match exactly, else ignoring case; YAML booleans are not read (``NO`` is nitric oxide,
not false). Model pollutants are those of
:data:`~aqforecast.emissions.inventory.POLLUTANTS` plus ``PM10`` (split into PM25 + PMC);
sector names are identifiers (letter first, then letters, digits, ``_``). A species not listed
keeps the model pollutant its name spells (``NOx``, ``so2``, ``PM2.5``, ``NMVOCs``, ... and the
CAMS/ECCAD long names ``nitrogen-oxides``, ``sulphur-dioxide``, ``carbon-monoxide``,
``ammonia``, ``non-methane-vocs``); any other is *unknown*: the reader lists it at warning level
with its file, and drops it. Sector fractions that do not sum to 1 scale the sector's mass (a
warning says so).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import InputFileError
from ..io.text import read_text
from .inventory import POLLUTANTS, GriddedInventory, canonical_pollutant

log = logging.getLogger(__name__)

__all__ = ["InventoryMapping", "read_mapping", "model_pollutant"]

#: Inventory spellings beyond :func:`canonical_pollutant` (CAMS-GLOB-ANT/ECCAD file names).
LONG_NAMES = {
    "nitrogen-oxides": "NOx", "sulphur-dioxide": "SO2", "sulfur-dioxide": "SO2",
    "sulphur-oxides": "SO2", "carbon-monoxide": "CO", "ammonia": "NH3",
    "non-methane-vocs": "NMVOC", "vocs-all": "NMVOC",
}
_TARGETS = set(POLLUTANTS) | {"PM10"}
_SECTOR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def model_pollutant(name: str) -> str | None:
    """The model pollutant (incl. PM10) an inventory species name spells, or None."""
    return canonical_pollutant(name) or LONG_NAMES.get(str(name).strip().lower())


def _lookup(table: dict, name: str):
    if name in table:
        return True, table[name]
    low = str(name).lower()
    for k, v in table.items():
        if k.lower() == low:
            return True, v
    return False, None


@dataclass
class InventoryMapping:
    """Species and sector maps (module docstring): {inventory name: {model name: factor} or
    None (dropped)}."""

    species: dict[str, dict[str, float] | None] = field(default_factory=dict)
    sectors: dict[str, dict[str, float] | None] = field(default_factory=dict)
    source: str = "<no mapping file>"

    def species_targets(self, name: str) -> tuple[bool, dict[str, float] | None]:
        """(known, {pollutant: factor} or None if dropped) for an inventory species."""
        found, v = _lookup(self.species, name)
        if found:
            return True, v
        p = model_pollutant(name)
        return (True, {p: 1.0}) if p is not None else (False, None)

    def sector_targets(self, name: str) -> dict[str, float]:
        """{model sector: fraction} of an inventory sector ({} when dropped)."""
        found, v = _lookup(self.sectors, name)
        if not found and "*" in self.sectors:
            v, found = self.sectors["*"], True
        if not found:
            return {str(name): 1.0}
        return dict(v) if v else {}

    def apply_sectors(self, inv: GriddedInventory) -> GriddedInventory:
        """``inv`` with its sectors mapped (for the native layout, whose species are already
        the model's: a ``species`` section is ignored there, with a warning)."""
        if self.species:
            log.warning("%s: the species section applies to layout: pattern only; ignored for "
                        "%s", self.source, inv.source)
        names: list[str] = []
        parts: list[np.ndarray] = []
        for i, s in enumerate(inv.sectors):
            for t, f in self.sector_targets(s).items():
                if t not in names:
                    names.append(t)
                    parts.append(np.zeros_like(inv.mass[:, i]))
                parts[names.index(t)] += f * inv.mass[:, i]
        mass = np.stack(parts, axis=1) if parts else inv.mass[:, :0]
        return GriddedInventory(inv.lon_edges, inv.lat_edges, tuple(names), mass, inv.period,
                                inv.source, inv.attrs)


def _targets(path: Path, section: str, key, value, check) -> dict[str, float] | None:
    where = f"{path}: {section}.{key}"
    if value is None:
        return None
    if isinstance(value, str):
        value = {value: 1.0}
    if not isinstance(value, dict) or not value:
        raise InputFileError(f"{where}: {value!r}; expected a name, null, or {{name: factor}}")
    out = {}
    for name, f in value.items():
        name = check(where, str(name))
        try:
            f = float(f)
        except (TypeError, ValueError):
            raise InputFileError(f"{where}: factor {f!r} of {name!r} is not a number") from None
        if not np.isfinite(f) or f < 0:
            raise InputFileError(f"{where}: factor {f:g} of {name!r}; expected a finite "
                                 "number >= 0")
        out[name] = out.get(name, 0.0) + f
    return out


def _check_pollutant(where: str, name: str) -> str:
    p = model_pollutant(name)
    if p not in _TARGETS:
        raise InputFileError(f"{where}: {name!r} is not a model pollutant; expected one of "
                             f"{', '.join(POLLUTANTS)} or PM10")
    return p


def _check_sector(where: str, name: str) -> str:
    if not _SECTOR_NAME.match(name) or len(name) > 32:
        raise InputFileError(f"{where}: sector name {name!r}; expected a letter then letters, "
                             "digits or '_' (at most 32)")
    return name


def read_mapping(path: str | Path) -> InventoryMapping:
    """Read and check a mapping YAML file (module docstring); InputFileError names the key."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: inventory mapping file does not exist")
    class _NoBoolLoader(yaml.SafeLoader):
        """YAML 1.1 without booleans: the species NO (and sectors On, Y...) stay strings."""

    _NoBoolLoader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    try:
        data = yaml.load(read_text(path, what="inventory mapping"), Loader=_NoBoolLoader) or {}
    except yaml.YAMLError as exc:
        raise InputFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a mapping with 'species' and/or 'sectors'")
    unknown = set(data) - {"species", "sectors"}
    if unknown:
        raise InputFileError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                             "expected 'species' and/or 'sectors'")
    out = InventoryMapping(source=str(path))
    for section, check in (("species", _check_pollutant), ("sectors", _check_sector)):
        table = data.get(section) or {}
        if not isinstance(table, dict):
            raise InputFileError(f"{path}: {section}: expected inventory name: model name pairs")
        for key, value in table.items():
            t = _targets(path, section, key, value, check)
            if section == "sectors" and t and abs(sum(t.values()) - 1.0) > 1e-9:
                log.warning("%s: sectors.%s fractions sum to %g, not 1: that sector's mass is "
                            "scaled by it", path, key, sum(t.values()))
            getattr(out, section)[str(key)] = t
    return out
