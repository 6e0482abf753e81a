"""The lmech exception family.

Every error lmech raises on bad user input is an :class:`LmechError` (or a subclass of a builtin
exception mixed with it), so a caller can catch all of them at once and the CLI can print the
message without a traceback.
"""

from __future__ import annotations


class LmechError(Exception):
    """Base class of every error lmech raises on purpose."""


class ConfigError(LmechError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


class UnknownNameError(LmechError, KeyError):
    """A law, observable or config key that does not exist was asked for."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class TrainModeError(LmechError, RuntimeError):
    """A curvature observable was asked for while dropout or BatchNorm is in training mode."""


class NonFiniteError(LmechError, FloatingPointError):
    """A loss, gradient or Hessian-vector product came out NaN or infinite (e.g. training diverged)."""


class StoreError(LmechError, OSError):
    """A run folder cannot be written or read."""


class LmechWarning(UserWarning):
    """A result is less accurate than asked for (float32 limits, an iteration budget ran out)."""
