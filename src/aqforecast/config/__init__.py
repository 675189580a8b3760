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

__all__ = ["ConfigError", "read_yaml", "RunConfig", "load_config", "config_schema", "resolve_path",
           "load_yaml_model", "key_location"]


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; the message says where and why."""


#: Largest number of values a config document may expand to (aliases included); the sample
#: config has ~600.
MAX_YAML_NODES = 100_000


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads ``NO``, ``yes``, ``on`` and ``off`` as booleans, which turns the species
    ``NO`` into ``False``; chemistry configs must not suffer from that.
    """


    def compose_document(self):
        # aliases expand to shared subtrees that every later walk (validation, the line index)
        # visits again: a few lines of nested aliases ("billion laughs") grow without bound.
        # Count the expanded size without expanding (memoised per node) and refuse a blow-up.
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n) -> int:
            key = id(n)
            if key not in sizes:
                sizes[key] = 0  # (a recursive alias counts once)
                if isinstance(n, yaml.MappingNode):
                    total = 1 + sum(size(k) + size(v) for k, v in n.value)
                elif isinstance(n, yaml.SequenceNode):
                    total = 1 + sum(size(v) for v in n.value)
                else:
                    total = 1
                sizes[key] = total
            return sizes[key]

        if node is not None and size(node) > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases expand this document to {size(node):,} values "
                f"(more than {MAX_YAML_NODES:,}); write the values out", node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {seen[key]}); "
                    f"a key may appear once per section", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date/time ({exc})",
                node.start_mark) from None


_Yaml12Loader.add_constructor("tag:yaml.org,2002:timestamp",
                              _Yaml12Loader.construct_yaml_timestamp)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:map", _Yaml12Loader.construct_yaml_map)

_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def read_yaml(path: str | Path):
    """Load a YAML file with YAML 1.2 booleans (``NO`` stays the string "NO"), no duplicate
    keys, no aliases, valid dates; any problem is a :class:`ConfigError` naming the file and
    line."""
    return _parse_yaml(Path(path), _read_text(Path(path)))


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        raise ConfigError(f"{path}: not a text file (NUL bytes); expected a UTF-8 YAML file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} (line {line}): not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                          f"at offset {exc.start}); save the file as UTF-8") from None


def _parse_yaml(path: Path, text: str):
    try:
        return yaml.load(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") \
            from None


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


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """YAML line of the key path ``loc`` or of its nearest ancestor found in ``lines``."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _format_errors(path: Path, err: ValidationError, lines: dict[tuple, int]) -> str:
    msgs = []
    for e in err.errors():
        loc = tuple(e["loc"])
        # pydantic appends union/model tags such as 'function-after[...]': drop non-key parts
        loc = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(
            ("function-", "list[", "tuple[", "dict[")))
        line = _line_of(loc, lines)
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
    text = _read_text(path)
    data = _parse_yaml(path, text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level, "
                          f"got {type(data).__name__}")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc, _line_index(text))) from None
    base = (path.parent / cfg.base_dir).resolve()
    return cfg.model_copy(update={"base_dir": base})


def load_yaml_model(path: str | Path, model, what: str = "file"):
    """Read a YAML file (the config's strict loader: no duplicate keys, alias blow-ups or
    invalid dates) and validate it with the pydantic ``model``; every problem is a
    :class:`ConfigError` naming the file, the key path and its YAML line. Returns
    ``(instance, line_index)``; the index maps key paths to lines for later checks
    (:func:`key_location`)."""
    path = Path(path)
    text = _read_text(path)
    data = _parse_yaml(path, text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level of the {what}, got "
                          f"{type(data).__name__}")
    lines = _line_index(text)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc, lines)) from None


def key_location(path: str | Path, loc: tuple, lines: dict) -> str:
    """``file: key.path[0].sub (line N)`` for a key path (as in validation errors)."""
    line = _line_of(loc, lines)
    return f"{path}: {_format_loc(loc)}" + (f" (line {line})" if line is not None else "")


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
