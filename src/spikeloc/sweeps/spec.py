"""What a sweep runs: a base config, the swept values, the seeds; expanded into one run per (point, seed).

A sweep file is TOML::

    preset = "tutorial"            # the base preset (default: default)
    seeds = 5                      # seeds 0..4, or a list: [0, 3, 7]
    [base]                         # overrides of the preset, for every run
    "train.membrane_baseline" = false
    [grid]                         # every combination of these lists
    "model.tau_hidden_ms" = [1, 2, 5, 10, 20, 30]
    [zip]                          # lists of one length, taken together (one point per position)
    "model.readout" = ["mean", "max"]
    "model.tau_out_ms" = [2.0, 20.0]

Keys are written as in ``--set`` (dotted, or a bare field name when it is unique); a table
(``[grid.model] tau_hidden_ms = [...]``) means the same as the dotted key. Every key and every value is
checked against the base before anything runs: a typo or a value out of range is one line naming it. A
combination of valid values that the config refuses as a whole (``model.dale`` with
``model.excitatory_only``) is not an error of the sweep: its runs are recorded as failed, with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.loading import load_config, parse_override, read_toml, resolve_key
from ..config.schema import MAX_SEED, RunConfig
from ..errors import SpikelocError

SECTIONS = ("preset", "seeds", "base", "grid", "zip", "description")
NAME_LIMIT = 80  # longer folder names become p<index>-s<seed>


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``preset`` plus ``base`` overrides (dotted key -> value), the ``grid`` (key -> values, their
    product) and ``zipped`` lists (taken together), and the seeds."""

    preset: str = "default"
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zipped: dict[str, list[Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    description: str = ""

    @property
    def keys(self) -> list[str]:
        """The swept keys, grid first."""
        return [*self.grid, *self.zipped]

    def points(self) -> list[dict[str, Any]]:
        """Every point: the grid's product, each with every position of the zipped lists."""
        grid = [dict(zip(self.grid, values, strict=True))
                for values in itertools.product(*self.grid.values())]
        length = len(next(iter(self.zipped.values()))) if self.zipped else 1
        zipped = [{k: v[i] for k, v in self.zipped.items()} for i in range(length)]
        return [g | z for g in grid for z in zipped]

    def to_json(self) -> dict[str, Any]:
        return {"preset": self.preset, "base": self.base, "grid": self.grid, "zip": self.zipped,
                "seeds": list(self.seeds), "description": self.description}


@dataclass(frozen=True)
class PlannedRun:
    """One (point, seed): its folder name under ``DIR/runs``, its config (None when the point's
    combination is refused, with ``refused`` saying why) and the hash that identifies it in a sweep."""

    name: str
    point: dict[str, Any]
    seed: int
    config: RunConfig | None
    identity: str
    refused: str | None = None

    @property
    def point_json(self) -> str:
        return point_json(self.point)


def point_json(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def _flatten(table: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden": 1}}`` and ``{"model.hidden": 1}`` -> ``{"model.hidden": 1}``, keys resolved."""
    out = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flatten(value, where, f"{dotted}.")
            continue
        try:
            out[".".join(resolve_key(dotted))] = value
        except SpikelocError as e:
            raise SpikelocError(f"{where}: {e}") from None
    return out


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000:
        return tuple(range(value))
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in value)):
        return tuple(value)
    raise SpikelocError(f"{where}: seeds must be a count from 1 to 1000 or a list of distinct seeds "
                        f"(0..{MAX_SEED}); got {value!r}")


def _lists(table: dict[str, Any], where: str) -> dict[str, list[Any]]:
    for key, values in table.items():
        if not isinstance(values, list) or not values:
            raise SpikelocError(f"{where}.{key}: must be a non-empty list of values; got {values!r}")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise SpikelocError(f"{where}.{key}: lists a value twice: {values!r}")
    return table


def spec_from_dict(data: dict[str, Any], where: str) -> SweepSpec:
    """A :class:`SweepSpec` from a sweep file's tables (``where``: the file, for messages)."""
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise SpikelocError(f"{where}: unknown key {unknown[0]!r}; a sweep file has {', '.join(SECTIONS)}")
    for name in ("base", "grid", "zip"):
        if not isinstance(data.get(name, {}), dict):
            raise SpikelocError(f"{where}: [{name}] must be a table of keys")
    preset = data.get("preset", "default")
    if not isinstance(preset, str):
        raise SpikelocError(f"{where}: preset must be a preset's name; got {preset!r}")
    grid = _lists(_flatten(data.get("grid", {}), f"{where} [grid]"), "grid")
    zipped = _lists(_flatten(data.get("zip", {}), f"{where} [zip]"), "zip")
    base = _flatten(data.get("base", {}), f"{where} [base]")
    return check(SweepSpec(preset=preset, base=base, grid=grid, zipped=zipped,
                           seeds=_seeds(data.get("seeds", 1), f"{where} seeds"),
                           description=str(data.get("description", ""))))


def read_spec(path: Path) -> SweepSpec:
    """The sweep file ``path``; a missing file or bad TOML is one line."""
    return spec_from_dict(read_toml(path, "sweep file"), str(path))


def _value_list(item: str, flag: str) -> tuple[str, list[Any]]:
    """``'model.hidden=16,32'`` -> ``('model.hidden', [16, 32])``: each value read as in ``--set``."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise SpikelocError(f"{flag} {item!r} must look like key=value1,value2,..., e.g. "
                            "model.tau_hidden_ms=2,5,10")
    values = [next(iter(_leaf(parse_override(f"{key}={v}")))) for v in raw.split(",")]
    return ".".join(resolve_key(key.strip())), values


def _leaf(nested: dict[str, Any]) -> list[Any]:
    value = next(iter(nested.values()))
    return _leaf(value) if isinstance(value, dict) else [value]


def spec_from_flags(preset: str | None, overrides: tuple[str, ...], grid: tuple[str, ...],
                    zipped: tuple[str, ...], seeds: int | None) -> SweepSpec:
    """A :class:`SweepSpec` from ``spikeloc sweep run --preset P --set k=v --grid k=v1,v2 --zip k=v1,v2
    --seeds N``."""
    base = {}
    for item in overrides:
        key, _, _ = item.partition("=")
        base[".".join(resolve_key(key.strip()))] = _leaf(parse_override(item))[0]
    grid_lists = dict(_value_list(g, "--grid") for g in grid)
    zip_lists = dict(_value_list(z, "--zip") for z in zipped)
    return check(SweepSpec(preset=preset or "default", base=base, grid=_lists(grid_lists, "--grid"),
                           zipped=_lists(zip_lists, "--zip"), seeds=_seeds(seeds or 1, "--seeds")))


def check(spec: SweepSpec) -> SweepSpec:
    """Refuse, in one line, a sweep whose keys or values are wrong alone: a key swept twice or also in the
    base, zipped lists of different lengths, a value the base config refuses."""
    swept = spec.keys
    twice = sorted({k for k in swept if swept.count(k) > 1} | (set(swept) & set(spec.base)))
    if twice:
        raise SpikelocError(f"{twice[0]} is set twice (in the base, the grid or the zip); set it once")
    if len({len(v) for v in spec.zipped.values()}) > 1:
        lengths = ", ".join(f"{k}: {len(v)}" for k, v in spec.zipped.items())
        raise SpikelocError(f"the zipped lists must have one length; got {lengths}")
    if "seed" in spec.base or "seed" in swept:
        raise SpikelocError("seed is set by the sweep's seeds; give seeds = N or a list instead")
    if "train.models" in spec.base or "train.models" in swept:
        raise SpikelocError("train.models is set by the sweep: each run is one model, and the seeds of a "
                            "point train together as a stack (--stack)")
    load_config(spec.preset, **spec.base)  # the base alone: a bad key or value there is the base's error
    for key, values in (spec.grid | spec.zipped).items():
        for value in values:
            try:
                load_config(spec.preset, **spec.base, **{key: value})
            except SpikelocError as e:
                if str(e).startswith(f"{key}:"):  # the field refuses the value itself, not a combination
                    raise SpikelocError(f"swept {e}") from None
    return spec


def identity(cfg: RunConfig) -> str:
    """What identifies a run in a sweep: its config without the device and thread count (which change
    where and how fast it runs, not what it computes)."""
    plain = cfg.model_copy(update={"device": "auto", "threads": "auto"})
    return hashlib.sha256(plain.to_toml().encode()).hexdigest()[:16]


def run_name(point: dict[str, Any], seed: int, index: int) -> str:
    """``tau_hidden_ms=2,readout=mean-s0``: the point's bare keys and values, safe as a folder name."""
    text = ",".join(f"{k.rpartition('.')[2]}={v}" for k, v in point.items()) or "base"
    text = re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)
    return f"{text}-s{seed}" if len(text) <= NAME_LIMIT else f"p{index:04d}-s{seed}"


def plan(spec: SweepSpec, threads: int | None = None, device: str | None = None) -> list[PlannedRun]:
    """Every (point, seed) of ``spec``, point by point, seeds in order. ``threads`` and ``device`` are set in
    every config that does not set them in its base. Names that two points would share once made safe for a
    folder (``a/b`` and ``a_b``) become ``p<index>-s<seed>`` for every point."""
    extra = {k: v for k, v in (("threads", threads), ("device", device))
             if v is not None and k not in spec.base}
    points = spec.points()
    names = [run_name(point, 0, index) for index, point in enumerate(points)]
    unique = len(set(names)) == len(names)
    out = []
    for index, point in enumerate(points):
        for seed in spec.seeds:
            name = run_name(point, seed, index) if unique else f"p{index:04d}-s{seed}"
            try:
                cfg = load_config(spec.preset, **{**spec.base, **point, **extra, "seed": seed})
            except SpikelocError as e:  # the values are valid alone (checked): this combination is not
                text = json.dumps({**spec.base, **point, "seed": seed}, sort_keys=True)
                out.append(PlannedRun(name, point, seed, None, hashlib.sha256(text.encode()).hexdigest()[:16],
                                      refused=str(e)))
                continue
            out.append(PlannedRun(name, point, seed, cfg, identity(cfg)))
    return out
