"""Stage configurations: dataclasses, YAML files and ``--set key=value`` overrides, type-checked.

Every stage takes one dataclass config. A run resolves it in three layers — the dataclass defaults, then an
optional YAML file (``--config``), then ``--set section.key=value`` overrides from the command line — and writes
the fully resolved result into the artifact it produces (:func:`to_dict`), so a run can be repeated from its
manifest alone. Unknown keys and values of the wrong type are errors that name the key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from avkd.core.errors import ConfigError

C = TypeVar("C")


class _Loader(yaml.SafeLoader):
    """PyYAML's YAML 1.1 float rule needs a dot: it reads ``5e-05`` (how ``json.dumps`` writes the default
    learning rate), ``5e-5`` and ``1E-4`` as text. This loader also reads those exponent forms as numbers, as
    YAML 1.2 and JSON do."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def resolve_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> C:
    """Defaults of ``cls``, then the YAML file at ``path``, then ``key=value`` overrides (dotted keys), then
    ``values`` (dotted key -> value, from command-line flags; None values are left unset): the most specific
    wins. The result is validated (:func:`validate`)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = load_yaml(path)
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    for key, value in (values or {}).items():
        if value is not None:
            _set_dotted(data, key, value)
    try:
        config = from_dict(cls, data)
        validate(config)
    except ConfigError as exc:
        # A bad value that came from a command-line flag is reported under the flag the user typed (``flags``
        # maps a key to its flag where the flag is not the key's last part, e.g. detector.name -> --detector).
        if exc.key is None or (values or {}).get(exc.key) is None:
            raise
        flag = (flags or {}).get(exc.key) or exc.key.split(".")[-1]
        reason = str(exc).split(": ", 1)[-1]
        raise ConfigError(f"--{flag.replace('_', '-')}: {reason}", key=exc.key) from None
    return config


# ------------------------------------------------------------------------------------------- value bounds


def bounded(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field whose value must be ``>= ge``, ``> gt``, ``<= le`` and pass ``check`` (which returns
    what is wrong, or None). None values of optional fields are not checked. :func:`validate` applies it."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le, "check": check})


def validate(config: Any, prefix: str = "") -> None:
    """Check every :func:`bounded` field of a (nested) dataclass config; the first bad value is a ConfigError
    naming its dotted key. Every stage validates its config before any work, whoever built it."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, key + ".")
            continue
        if value is None or not f.metadata:
            continue
        meta = f.metadata
        problem = None
        if meta.get("ge") is not None and not value >= meta["ge"]:
            problem = f"must be at least {meta['ge']}"
        elif meta.get("gt") is not None and not value > meta["gt"]:
            problem = f"must be more than {meta['gt']}"
        elif meta.get("le") is not None and not value <= meta["le"]:
            problem = f"must be at most {meta['le']}"
        elif meta.get("check") is not None:
            problem = meta["check"](value)
        if problem:
            raise ConfigError(f"config key {key!r}: {value!r} {problem}", key=key)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, bad YAML or a non-mapping is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = _yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys, found {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is read as YAML so numbers, lists and null work."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set detector.name=haar")
    try:
        value = _yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {key!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def from_dict(cls: type[C], data: Mapping[str, Any], prefix: str = "") -> C:
    """Build a dataclass from a mapping, checking every key and value against the field types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key {prefix.rstrip('.') or '<root>'!r}: expected a section (mapping)")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"config key {prefix + unknown[0]!r} is unknown; known keys here: {known}")
    kwargs = {}
    for name, value in data.items():
        default = _default_of(fields[name])
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # A section given in part keeps the rest of *this field's* default (its default_factory, e.g. the
            # student's warm-up schedule), not the section class's own defaults.
            value = _merged(to_dict(default), value)
        kwargs[name] = _coerce(value, hints[name], prefix + name)
    # Sections absent from the data still get their nested defaults through default_factory.
    return cls(**kwargs)


def _default_of(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` laid over it, section by section."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(tp, value or {}, key + ".")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"config key {key!r}: {value!r} fits none of {tp}"
        )
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"config key {key!r}: {value!r} is not one of {choices}", key=key)
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}", key=key)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(
                    f"config key {key!r}: expected {len(args)} items, got {len(value)}", key=key
                )
            items = [_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}", key=key)
        vt = args[1] if args else Any
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true or false, got {value!r}", key=key)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}", key=key)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}", key=key)
            return float(value)
        raise ConfigError(f"config key {key!r}: expected a number, got {value!r}", key=key)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # YAML reads `name: 1e5` or `tag: 2024` as numbers; a str field wants text
        raise ConfigError(f"config key {key!r}: expected text, got {value!r}", key=key)
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"config key {key!r}: expected a path, got {value!r}", key=key)
    raise ConfigError(f"config key {key!r}: unsupported field type {tp}", key=key)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-safe dict of a (nested) dataclass config with every default filled in."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return convert(config)


def apply_overrides(config: C, overrides: Iterable[str]) -> C:
    """A copy of ``config`` with ``key=value`` overrides applied (for configs built in code, e.g. by the demo)."""
    data = to_dict(config)
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    return from_dict(type(config), data)
