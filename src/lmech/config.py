"""Frozen, keyword-only configuration dataclasses: validation helpers and ``--set key=value``.

Every config in lmech is a ``@dataclass(frozen=True, kw_only=True)`` that validates itself in
``__post_init__`` with the helpers below, so a bad value is caught in one place whether it comes from
Python, the CLI or a sweep file.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError, UnknownNameError


def require(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)


def positive(name: str, value: float) -> None:
    require(value > 0, f"{name} must be > 0, got {value!r}")


def valid_seed(seed: int) -> None:
    require(0 <= seed < 2**32, f"seed must be a whole number in [0, 2**32), got {seed!r}")


def finite_positive(name: str, value: float) -> None:
    require(math.isfinite(value) and value > 0, f"{name} must be finite and > 0, got {value!r}")


def non_negative(name: str, value: float) -> None:
    require(value >= 0, f"{name} must be >= 0, got {value!r}")


def one_of(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    require(value in choices, f"{name} must be one of {choices}, got {value!r}")


def to_dict(config: Any) -> dict[str, Any]:
    """The config as a JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def closest(name: str, choices: Iterable[str]) -> str:
    """A ", or did you mean ...?" hint, empty when nothing is close."""
    near = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""


def _tuple_items(text: str, key: str) -> list[str]:
    """The top-level comma-separated items of ``text``, one pair of enclosing brackets removed:
    ``"(1.5,2),(2,1.5)"`` and ``"((1.5,2),(2,1.5))"`` both give ``["(1.5,2)", "(2,1.5)"]``; ``"a,b"`` gives
    ``["a", "b"]``; empty items (a trailing comma) are dropped."""
    text = text.strip()
    depth, match = 0, {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch in "([":
            stack.append(i)
        elif ch in ")]":
            if not stack:
                raise ConfigError(f"{key}: unbalanced brackets in {text!r}")
            match[stack.pop()] = i
    if stack:
        raise ConfigError(f"{key}: unbalanced brackets in {text!r}")
    if text and text[0] in "([" and match[0] == len(text) - 1:
        text = text[1:-1]
    parts, start = [], 0
    for i, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_value(text: str, kind: Any, key: str) -> Any:
    """Parse one ``--set`` value to the annotated type ``kind``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(text, inner[0], key)
    if origin is tuple:
        parts = _tuple_items(text, key)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(p, args[0], key) for p in parts)
        if len(parts) != len(args):
            raise ConfigError(f"{key} expects {len(args)} comma-separated values, got {len(parts)} in {text!r}")
        return tuple(parse_value(p, item, key) for p, item in zip(parts, args))
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key} expects true or false, got {text!r}")
    if kind in (int, float):
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{key} expects a number ({kind.__name__}), got {text!r}") from None
        if kind is int:
            if not value.is_integer():
                raise ConfigError(f"{key} expects a whole number, got {text!r}")
            return int(value)
        return value
    if kind is str:
        return text
    raise ConfigError(f"{key} has type {kind} that cannot be set from the command line")


def apply_overrides(config: Any, overrides: Mapping[str, str] | Iterable[str]) -> Any:
    """A copy of ``config`` with fields replaced from ``key=value`` strings (or a mapping).

    Values are parsed to each field's annotated type (``int``, ``float``, ``bool``, ``str``,
    ``tuple[T, ...]`` written ``a,b,c`` or ``(a,b,c)``, nested tuples such as ``(1.5,2),(2,1.5)`` for
    ``tuple[tuple[float, float], ...]``, and ``T | None``), then the dataclass re-validates.

    Raises:
        UnknownNameError: a key that is not a field (the message lists the valid keys).
        ConfigError: a value of the wrong type or out of range, or an item without ``=``.
    """
    if not isinstance(overrides, Mapping):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"--set expects key=value, got {item!r}")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
        overrides = pairs
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for key, text in overrides.items():
        if key not in names:
            raise UnknownNameError(
                f"unknown config key {key!r}{closest(key, names)}; valid keys: {', '.join(names)}"
            )
        changes[key] = parse_value(str(text), hints[key], key)
    return dataclasses.replace(config, **changes)
