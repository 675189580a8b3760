"""Run configuration: strict models, YAML loading with precise errors, JSON Schema export.

>>> cfg = load_config("config/config.yaml")          # doctest: +SKIP
>>> cfg.domains[0].dx_m                               # doctest: +SKIP
3000.0

A bad file raises :class:`ConfigError`, whose message names the file, the key path (with the YAML
line where it can be found) and what was expected, e.g.::

    config/config.yaml: domains[1].nx (line 23): Input should be greater than or equal to 4
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from .models import (  # noqa: F401  (re-exported)
    MAX_LEAD_HOURS,
    ChemistryConfig,
    DomainConfig,
    InputsConfig,
    LeadWindow,
    OutputConfig,
    ParallelConfig,
    ProjectionConfig,
    RegionConfig,
    RunConfig,
    TagConfig,
    TimeConfig,
    VerticalConfig,
)

__all__ = ["ConfigError", "read_yaml", "RunConfig", "load_config", "config_schema", "resolve_path"]


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; the message says where and why."""


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads ``NO``, ``yes``, ``on`` and ``off`` as booleans, which turns the species
    ``NO`` into ``False``; chemistry configs must not suffer from that.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def read_yaml(path: str | Path):
    """Load a YAML file with YAML 1.2 booleans (``NO`` stays the string "NO")."""
    with open(path) as fh:
        return yaml.load(fh, Loader=_Yaml12Loader)


def _line_index(text: str) -> dict[tuple, int]:
    """Map key paths (tuples of str/int) to 1-based YAML line numbers."""
    index: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=_Yaml12Loader)
    except yaml.YAMLError:
        return index

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = path + (k.value,)
                index[p] = k.start_mark.line + 1
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = path + (i,)
                index[p] = v.start_mark.line + 1
                walk(v, p)

    if root is not None:
        walk(root, ())
    return index


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(path: Path, err: ValidationError, lines: dict[tuple, int]) -> str:
    msgs = []
    for e in err.errors():
        loc = tuple(e["loc"])
        # pydantic appends union/model tags such as 'function-after[...]': drop non-key parts
        loc = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(
            ("function-", "list[", "tuple[", "dict[")))
        line = None
        for n in range(len(loc), -1, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        where = _format_loc(loc)
        if line is not None:
            where += f" (line {line})"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here; check spelling)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        msgs.append(f"{path}: {where}: {msg}")
    return "\n".join(msgs)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run configuration (YAML). Raises :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level, "
                          f"got {type(data).__name__}")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc, _line_index(text))) from None
    base = (path.parent / cfg.base_dir).resolve()
    return cfg.model_copy(update={"base_dir": base})


def resolve_path(cfg: RunConfig, p: str | Path) -> Path:
    """Resolve a path from the config against ``cfg.base_dir``."""
    p = Path(p)
    return p if p.is_absolute() else cfg.base_dir / p


def config_schema() -> dict:
    """JSON Schema (draft 2020-12) of :class:`RunConfig`."""
    schema = RunConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aqforecast run configuration"
    return schema


def config_schema_json() -> str:
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
