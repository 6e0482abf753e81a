"""What a sweep runs: one law, fixed overrides, a grid and a random search over its config fields, and seeds.

A spec is a :class:`SweepSpec`, or the same fields in a YAML file read by :func:`load_spec`::

    name: deep-linear-init        # the sweep's folder, runs/<name>/ (default: the file's name)
    law: deep-linear-modes
    preset: quick                 # quick, full, or leave it out for the standard setting
    base:                         # fixed overrides; a tuple field takes a YAML list
      depths: [2]
    grid:                         # every combination of these values
      init_strength: [1.0e-3, 1.0e-2]
    random:                       # num_samples draws, each crossed with every grid combination
      num_samples: 2
      seed: 0
      fields:
        lr: {loguniform: [3.0e-4, 1.0e-3]}
    seeds: [0, 1]                 # every point once per seed (sets the config's ``seed``)

:func:`resolve_points` turns a spec into its points (grid × random draws × seeds), each a validated
law config keyed by :func:`lmech.lab.store.config_hash` of the law's name and the resolved config.
The key leaves out the lmech version on purpose: the same config is the same point, so upgrading
lmech does not re-run a finished sweep (the version is stored in every point's ``config.json``;
use a new sweep name to re-run under a new version).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import types
import typing
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import closest, require, to_dict, valid_seed
from ..config import parse_value as parse_text
from ..errors import ConfigError, UnknownNameError
from ..laws import get_law
from .store import config_hash

DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
SPEC_KEYS = ("name", "law", "preset", "base", "grid", "random", "seeds")
RANDOM_KEYS = ("num_samples", "seed", "fields")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Distribution:
    """One dimension of a random search.

    ``uniform`` and ``loguniform`` draw a float from ``[low, high]`` (``loguniform``: uniform in
    ``log``; needs ``low > 0``), ``int`` a whole number from ``low..high`` with both ends included, and
    ``choice`` one of ``args`` with equal odds. In YAML: ``{uniform: [0.1, 1.0]}``, ``{choice: [a, b]}``.
    """

    kind: str
    args: tuple[Any, ...]

    def __post_init__(self) -> None:
        require(self.kind in DISTRIBUTIONS, f"a distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                                            f"got {self.kind!r}{closest(str(self.kind), DISTRIBUTIONS)}")
        args = tuple(_plain(self.args)) if isinstance(self.args, (list, tuple, np.ndarray)) else (_plain(self.args),)
        if self.kind == "choice":
            require(len(args) >= 1, "choice needs at least one value, e.g. {choice: [relu, tanh]}")
        else:
            require(len(args) == 2, f"{self.kind} needs [low, high], got {list(args)}")
            try:
                low, high = (float(a) for a in args)
            except (TypeError, ValueError):
                raise ConfigError(f"{self.kind} needs two numbers [low, high], got {list(args)}") from None
            require(math.isfinite(low) and math.isfinite(high) and low <= high,
                    f"{self.kind} needs finite low <= high, got [{low}, {high}]")
            if self.kind == "loguniform":
                require(low > 0, f"loguniform needs low > 0, got {low}")
            if self.kind == "int":
                require(low.is_integer() and high.is_integer(), f"int needs whole numbers [low, high], got {list(args)}")
                low, high = int(low), int(high)
            args = (low, high)
        object.__setattr__(self, "args", args)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Distribution:
        """Read ``{kind: args}``, e.g. ``{loguniform: [1e-4, 1e-2]}``."""
        if isinstance(data, Distribution):
            return data
        if not isinstance(data, Mapping) or len(data) != 1:
            raise ConfigError(f"{where} must be one distribution such as {{uniform: [0.1, 1.0]}}; "
                              f"kinds: {', '.join(DISTRIBUTIONS)}; got {data!r}")
        ((kind, args),) = data.items()
        try:
            return cls(kind, args)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def sample(self, rng: np.random.Generator, num_samples: int) -> list[Any]:
        """``num_samples`` independent draws as plain Python values."""
        if self.kind == "choice":
            return [self.args[i] for i in rng.integers(len(self.args), size=num_samples)]
        low, high = self.args
        if self.kind == "int":
            return [int(v) for v in rng.integers(low, high + 1, size=num_samples)]
        if self.kind == "loguniform":
            return [float(v) for v in np.exp(rng.uniform(math.log(low), math.log(high), size=num_samples))]
        return [float(v) for v in rng.uniform(low, high, size=num_samples)]

    def to_dict(self) -> dict[str, list[Any]]:
        return {self.kind: list(self.args)}


@dataclass(frozen=True, kw_only=True)
class RandomSearch:
    """``num_samples`` draws of every field in ``fields`` (field name → :class:`Distribution`).

    Each field draws from its own stream, seeded by ``seed`` and the field's name, so a field's
    values do not depend on the other fields, and raising ``num_samples`` keeps the earlier draws
    (a resumed sweep only runs the new points).
    """

    num_samples: int
    fields: Mapping[str, Distribution]
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.num_samples, int) and not isinstance(self.num_samples, bool) and self.num_samples >= 1,
                f"random.num_samples must be a whole number >= 1, got {self.num_samples!r}")
        require(isinstance(self.seed, int) and not isinstance(self.seed, bool),
                f"random.seed must be a whole number, got {self.seed!r}")
        valid_seed(self.seed)
        require(isinstance(self.fields, Mapping) and len(self.fields) >= 1,
                "random.fields must map at least one config field to a distribution, e.g. {lr: {loguniform: [1e-4, 1e-2]}}")
        fields = {str(k): Distribution.from_dict(v, f"random.fields.{k}") for k, v in self.fields.items()}
        object.__setattr__(self, "fields", fields)

    @classmethod
    def from_dict(cls, data: Any) -> RandomSearch:
        if isinstance(data, RandomSearch):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(f"random must be a mapping with {', '.join(RANDOM_KEYS)}, got {data!r}")
        _known_keys(data, RANDOM_KEYS, "random")
        if "num_samples" not in data or "fields" not in data:
            raise ConfigError("random needs num_samples and fields, e.g. "
                              "random: {num_samples: 8, fields: {lr: {loguniform: [1.0e-4, 1.0e-2]}}}")
        return cls(**data)

    def draw(self) -> list[dict[str, Any]]:
        """The ``num_samples`` draws, each a dict field → value."""
        columns = {
            name: dist.sample(np.random.default_rng([self.seed, zlib.crc32(name.encode())]), self.num_samples)
            for name, dist in self.fields.items()
        }
        return [{name: values[i] for name, values in columns.items()} for i in range(self.num_samples)]

    def to_dict(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples, "seed": self.seed,
                "fields": {k: v.to_dict() for k, v in self.fields.items()}}


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A sweep of one law over its config fields (the fields of a YAML spec; see the module docs).

    Attributes:
        name: the sweep's folder name under the runs folder (letters, digits, ``.``, ``_``, ``-``).
        law: a registered law's name.
        preset: ``"quick"``, ``"full"`` or ``None`` (the law's standard setting) under the overrides.
        base: field → value, the same in every point.
        grid: field → list of values; every combination is a point.
        random: draws crossed with every grid combination, or ``None``.
        seeds: every point runs once per seed (the config's ``seed`` field); empty = the config's own.
    """

    name: str
    law: str
    preset: str | None = None
    base: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    random: RandomSearch | None = None
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and _NAME.fullmatch(self.name) is not None,
                f"name must be a folder name of letters, digits, '.', '_' and '-', got {self.name!r}")
        require(isinstance(self.law, str) and bool(self.law), f"law must name a law from `lmech list`, got {self.law!r}")
        require(self.preset is None or isinstance(self.preset, str), f"preset must be quick, full or absent, got {self.preset!r}")
        require(isinstance(self.base, Mapping), f"base must map config fields to values, got {self.base!r}")
        require(isinstance(self.grid, Mapping), f"grid must map config fields to lists of values, got {self.grid!r}")
        for key, values in self.grid.items():
            require(isinstance(values, (list, tuple, np.ndarray)) and len(values) >= 1,
                    f"grid.{key} must be a non-empty list of values, got {values!r}; a fixed value goes in base")
        random = None if self.random is None else RandomSearch.from_dict(self.random)
        require(isinstance(self.seeds, (list, tuple, np.ndarray)),
                f"seeds must be a list of whole numbers, e.g. [0, 1, 2], got {self.seeds!r}")
        seeds = _plain(self.seeds)
        for seed in seeds:
            require(isinstance(seed, int) and not isinstance(seed, bool), f"seeds must be whole numbers, got {seed!r}")
            valid_seed(seed)
        require(len(set(seeds)) == len(seeds), f"seeds must be distinct, got {list(seeds)}")
        places: dict[str, str] = {}
        for where, keys in (("base", self.base), ("grid", self.grid), ("random.fields", random.fields if random else {}),
                            ("seeds", ["seed"] if seeds else [])):
            for key in keys:
                require(key not in places, f"{key!r} is set in both {places.get(key)} and {where}; set it in one place")
                places[key] = where
        object.__setattr__(self, "base", _plain(self.base))
        object.__setattr__(self, "grid", _plain(self.grid))
        object.__setattr__(self, "random", random)
        object.__setattr__(self, "seeds", tuple(seeds))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, default_name: str | None = None) -> SweepSpec:
        """Read a spec from plain data (a parsed YAML file); ``name`` defaults to ``default_name``.

        Raises:
            UnknownNameError: a key that is not a spec field (the message lists them).
            ConfigError: a missing ``law`` or a malformed field.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a sweep spec must be a mapping with keys {', '.join(SPEC_KEYS)}, got {data!r}")
        _known_keys(data, SPEC_KEYS, "the sweep spec")
        data = dict(data)
        if "name" not in data and default_name is not None:
            data["name"] = default_name
        for key in ("name", "law"):
            if key not in data:
                raise ConfigError(f"the sweep spec needs {key}: ..., e.g. name: my-sweep, law: deep-linear-modes")
        for key in ("base", "grid"):
            if data.get(key) is None:
                data.pop(key, None)
        if data.get("seeds") is None:
            data.pop("seeds", None)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (what ``spec.yaml`` holds)."""
        return {
            "name": self.name, "law": self.law, "preset": self.preset, "base": _plain(self.base),
            "grid": _plain(self.grid), "random": self.random.to_dict() if self.random else None,
            "seeds": list(self.seeds),
        }


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its key, the values of the swept fields (JSON-ready) and the law config."""

    key: str
    values: Mapping[str, Any]
    config: Any

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items()) or "the base config"


def load_spec(path: Path | str) -> SweepSpec:
    """Read a YAML sweep spec; its ``name`` defaults to the file's stem.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or is not a valid spec.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the sweep spec {str(path)!r}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{str(path)!r} is not valid YAML: {exc}") from None
    return SweepSpec.from_dict(data, default_name=path.stem)


def dump_spec(spec: SweepSpec) -> str:
    """The spec as YAML text (:func:`load_spec` reads it back to an equal spec)."""
    import yaml

    return yaml.safe_dump(spec.to_dict(), sort_keys=False)


def resolve_points(spec: SweepSpec) -> list[Point]:
    """Every point of ``spec`` in order (grid × random draws × seeds), validated before anything runs.

    Values are converted to each field's annotated type (``1`` and ``"1e-3"`` to float fields, lists
    to tuples), so the same config gets the same key however it was written; points that resolve to
    the same config are kept once.

    Raises:
        UnknownNameError: an unknown law, or a field the law's config does not have (the message lists
            the valid fields and the closest match).
        ConfigError: a value of the wrong type, or one the law's config rejects (naming the point).
    """
    law = get_law(spec.law)
    base_config = law.config(spec.preset)
    hints = typing.get_type_hints(type(base_config))
    names = [f.name for f in dataclasses.fields(base_config)]
    random_fields = spec.random.fields if spec.random else {}
    for where, keys in (("base", spec.base), ("grid", spec.grid), ("random.fields", random_fields)):
        for key in keys:
            if key not in names:
                raise UnknownNameError(f"{where}: {law.name} has no config field {key!r}{closest(key, names)}; "
                                       f"fields: {', '.join(names)}")
    if spec.seeds and "seed" not in names:
        raise ConfigError(f"seeds: {law.name}'s config has no seed field; leave seeds out")
    base = {k: _coerce(v, hints[k], f"base.{k}") for k, v in spec.base.items()}
    axes = [[(k, _coerce(v, hints[k], f"grid.{k}")) for v in values] for k, values in spec.grid.items()]
    draws = spec.random.draw() if spec.random else [{}]
    draws = [{k: _coerce(v, hints[k], f"random.fields.{k}") for k, v in d.items()} for d in draws]
    seeds = [{"seed": s} for s in spec.seeds] or [{}]
    swept = [*spec.grid, *random_fields, *(["seed"] if spec.seeds else [])]
    points: list[Point] = []
    seen: dict[str, dict[str, Any]] = {}
    for combo, draw, seed in itertools.product(itertools.product(*axes), draws, seeds):
        changes = {**base, **dict(combo), **draw, **seed}
        label = ", ".join(f"{k}={changes[k]}" for k in swept) or "the base config"
        try:
            config = dataclasses.replace(base_config, **changes)
        except ConfigError as exc:
            raise ConfigError(f"sweep {spec.name!r}, point {label}: {exc}") from None
        resolved = to_dict(config)
        key = config_hash(law.name, resolved)
        if key in seen:
            require(seen[key] == resolved, f"two configs share the key {key}; rename the sweep or change a value")
            continue
        seen[key] = resolved
        points.append(Point(key, {k: resolved[k] for k in swept}, config))
    return points


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """``value`` (from YAML or Python) as the annotated type ``kind``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where)
    if isinstance(value, str) and kind is not str:  # YAML 1.1 reads 1e-3 as text; "2,3" as in --set
        return parse_text(value, kind, where)
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_coerce(v, args[0], where) for v in items)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is float and number:
        return float(value)
    if kind is int and number and float(value).is_integer():
        return int(value)
    ok = {bool: isinstance(value, bool), str: isinstance(value, str), int: False, float: False}.get(kind, True)
    if not ok:
        raise ConfigError(f"{where} expects {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _known_keys(data: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    for key in data:
        if key not in valid:
            raise UnknownNameError(f"{where} has no key {key!r}{closest(str(key), valid)}; keys: {', '.join(valid)}")


def _plain(value: Any) -> Any:
    """``value`` as plain YAML/JSON data: tuples as lists, NumPy scalars (``np.logspace``'s) as Python's."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value
