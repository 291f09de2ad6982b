"""Resolve a config: preset < TOML file < ``key=value`` overrides < keyword fields.

Presets are TOML files in ``presets/``. A key is dotted (``train.epochs``) or a bare field name
when exactly one section has it (``hidden``); an older name of a field (``beta``) is read as the
new one (``surrogate_slope``). Every mistake is one :class:`~spikeloc.errors.SpikelocError` line
naming the key and what is allowed.
"""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import SpikelocError
from .schema import SECTIONS, RunConfig, Section

PRESETS = resources.files(__package__).joinpath("presets")


# ---------------------------------------------------------------- presets

def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in PRESETS.iterdir() if p.name.endswith(".toml"))


def _preset_dict(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's fields; one that names a base (``preset = "..."``) overrides the base's."""
    names = preset_names()
    if name not in names:
        raise SpikelocError(f"unknown preset {name!r}; allowed: {', '.join(names)}")
    if name in seen:
        raise SpikelocError(f"presets {' -> '.join((*seen, name))} name each other in a circle")
    data = tomllib.loads(PRESETS.joinpath(f"{name}.toml").read_text())
    base = data.pop("preset", None)
    return _merge(_canonical(_preset_dict(base, (*seen, name))), _canonical(data)) if base else data


def preset_descriptions() -> dict[str, str]:
    return {name: _preset_dict(name).get("description", "") for name in preset_names()}


# ---------------------------------------------------------------- keys

def _names(section: type[Section]) -> dict[str, str]:
    """Every name a section reads, old names included -> the field it sets."""
    return {**{name: name for name in section.model_fields},
            **{old: new for new, old in section.old_names().items()}}


def _suggest(key: str) -> str:
    """`` (did you mean ...?)`` with up to three known keys like ``key``: containing it, or close in
    spelling."""
    section, _, bare = key.rpartition(".")
    known = {name: f"{s}.{name}" for s, cls in SECTIONS.items() for name in cls.model_fields
             if section not in SECTIONS or s == section}
    known.update({name: name for name in RunConfig.model_fields if name not in SECTIONS and not section})
    containing = [dotted for name, dotted in known.items() if bare and bare in name]
    close = [known[name] for name in difflib.get_close_matches(bare, list(known), n=3, cutoff=0.6)]
    found = list(dict.fromkeys(close + containing))[:3]
    return f" (did you mean {', '.join(found)}?)" if found else ""


def resolve_key(key: str) -> list[str]:
    """``'train.epochs'`` -> ``['train', 'epochs']``; a bare field name is looked up in every section."""
    parts = key.split(".")
    if len(parts) == 1:
        if key in RunConfig.model_fields and key not in SECTIONS:
            return parts
        owners = [(s, _names(cls)[key]) for s, cls in SECTIONS.items() if key in _names(cls)]
        if len(owners) == 1:
            return list(owners[0])
        if len(owners) > 1:
            raise SpikelocError(f"ambiguous key {key!r}: it names "
                                f"{' and '.join(f'{s}.{n}' for s, n in owners)}; write the dotted name")
    elif len(parts) == 2 and parts[0] in SECTIONS and parts[1] in _names(SECTIONS[parts[0]]):
        return [parts[0], _names(SECTIONS[parts[0]])[parts[1]]]
    elif len(parts) > 2:
        raise SpikelocError(f"unknown config key {key!r}: a key is a field name or section.field, "
                            "e.g. hidden or model.hidden")
    raise SpikelocError(f"unknown config key {key!r}{_suggest(key)}; `spikeloc config` prints every key")


def parse_override(item: str) -> dict[str, Any]:
    """``'model.hidden=128'`` -> ``{'model': {'hidden': 128}}``; values are read as TOML, else as text."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise SpikelocError(f"override {item!r} must look like key=value, e.g. train.epochs=20")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return _nest(resolve_key(key.strip()), value)


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


# ---------------------------------------------------------------- files and validation

def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    """The TOML file ``path`` (``what`` it is, for the messages); a missing file or bad TOML is one line."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SpikelocError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpikelocError(f"cannot read {what} {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpikelocError(f"{what} {path} is not valid TOML: {e}") from None


def _canonical(data: dict[str, Any]) -> dict[str, Any]:
    """Old field names (``model.beta``) replaced by the current ones, section by section, so that one layer's
    old name and the next layer's new one merge into one field."""
    out = dict(data)
    for section, cls in SECTIONS.items():
        if isinstance(out.get(section), dict):
            try:
                out[section] = cls.current_names(out[section], prefix=f"{section}.")
            except ValueError as e:
                raise SpikelocError(str(e)) from None
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _validate(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            section = err["loc"][0] if len(err["loc"]) > 1 else None
            fields = SECTIONS[section].model_fields if section in SECTIONS else RunConfig.model_fields
            msg = f"unknown key{_suggest(where)}; allowed: {', '.join(fields)}"
        elif "input" in err and not isinstance(err["input"], dict):
            msg += f" (got {err['input']!r})"
        raise SpikelocError(f"{where}: {msg}") from None


def load_config(preset: str | None = None, file: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = (), **fields: Any) -> RunConfig:
    """Resolve a config: preset < TOML file < ``key=value`` overrides < ``fields``.

    The preset is ``preset``, else the file's top-level ``preset = "..."``, else ``default``.
    ``fields`` are keys as in an override, bare or top-level, with Python values:
    ``load_config("default", tau_hidden_ms=5, seed=3)``; None is ignored (so the CLI can pass
    options that were not given).
    """
    file_data = read_toml(Path(file)) if file is not None else {}
    file_preset = file_data.pop("preset", "default")
    data = _merge(_canonical(_preset_dict(preset or file_preset)), _canonical(file_data))
    for item in overrides:
        data = _merge(data, parse_override(item))
    for key, value in fields.items():
        if value is not None:
            data = _merge(data, _nest(resolve_key(key), value))
    return _validate(data)


def with_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """``cfg`` with ``key=value`` overrides applied and the result validated as a whole."""
    data = cfg.model_dump()
    for item in overrides:
        data = _merge(data, parse_override(item))
    return _validate(data)


def config_from_toml_text(text: str, source: str) -> RunConfig:
    """Read a saved ``config.toml`` (as written by a run, of this release or an earlier one)."""
    try:
        return _validate(_canonical(tomllib.loads(text)))
    except tomllib.TOMLDecodeError as e:
        raise SpikelocError(f"{source} is not valid TOML: {e}") from None
