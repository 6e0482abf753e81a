"""The catalog of laws, by kebab-case name."""

from __future__ import annotations

from ..config import closest
from ..errors import ConfigError, UnknownNameError
from .base import PILLARS, Law

_LAWS: dict[str, type[Law]] = {}


def register(cls: type[Law]) -> type[Law]:
    """Class decorator adding a :class:`Law` subclass to the catalog."""
    if cls.pillar not in PILLARS:
        raise ConfigError(f"law {cls.name!r} has pillar {cls.pillar!r}; use one of {sorted(PILLARS)}")
    if cls.name in _LAWS and _LAWS[cls.name] is not cls:
        raise ConfigError(f"a law named {cls.name!r} is already registered")
    _LAWS[cls.name] = cls
    return cls


def get_law(name: str) -> Law:
    """An instance of the law registered as ``name``.

    Raises:
        UnknownNameError: naming the closest registered laws.
    """
    if name not in _LAWS:
        raise UnknownNameError(
            f"no law named {name!r}{closest(name, _LAWS)}; `lmech list` shows them all "
            f"({', '.join(sorted(_LAWS))})"
        )
    return _LAWS[name]()


def list_laws(pillar: str | None = None) -> list[Law]:
    """All registered laws (optionally of one pillar), sorted by pillar then name.

    Raises:
        UnknownNameError: for a pillar that does not exist.
    """
    if pillar is not None and pillar not in PILLARS:
        raise UnknownNameError(f"no pillar named {pillar!r}{closest(pillar, PILLARS)}; pillars: {', '.join(PILLARS)}")
    order = list(PILLARS)
    laws = [cls() for cls in _LAWS.values() if pillar is None or cls.pillar == pillar]
    return sorted(laws, key=lambda law: (order.index(law.pillar), law.name))
