"""Errors that carry one clear line for the user (the CLI prints them and exits with code 2)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad value given by the user: the message names it and says what is valid."""


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float, or raise :class:`ConfigError` naming ``name`` and its range.

    Without ``high`` the range is unbounded above: ``inf`` itself is valid only with
    ``allow_inf`` (e.g. a rationality ``beta = inf``), and the message says which.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    bad = value != value  # NaN
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    elif not allow_inf:
        bad |= value == float("inf")
    if bad:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        if high is None:
            hi = "inf]" if allow_inf else "inf)"
        else:
            hi = f"{high:g}" + (")" if high_open else "]")
        raise ConfigError(f"{name} must be in {lo}, {hi}, got {value:g}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int >= 1, or raise :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
