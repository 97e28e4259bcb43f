"""Byte quantities for people: readable sizes in messages, checked quotas.

:func:`format_bytes` is the one way acquisition messages, tables and logs show a
size (``10.0 kB``, ``3.15 MB``, ``512 B``); JSON output and the catalogue keep
exact byte counts. :func:`quota_bytes` turns a ``--max-download-gb`` or
``--max-storage-tb`` value into bytes, refusing what cannot be a quota;
:func:`size_problem` says why a size read from a server's manifest or from a
sidecar on disk cannot be a byte count.
"""

from __future__ import annotations

import math

from exocube.errors import ConfigError

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
GB = 10**9
TB = 10**12
MAX_BYTES = 2**63 - 1  # a signed 64-bit file offset


def format_bytes(nbytes: float) -> str:
    """``nbytes`` in decimal (SI) units with three significant digits: ``3.15 MB``.

    Whole bytes below 1000 are shown exactly (``999 B``); a value that rounds up
    to 1000 of a unit moves to the next one (``999_999`` is ``1.00 MB``).
    """
    sign = "-" if nbytes < 0 else ""
    value = abs(float(nbytes))
    if round(value) < 1000:
        return f"{sign}{value:.0f} B"
    exp = 1
    while exp < len(_UNITS) - 1 and float(f"{value / 1000**exp:.3g}") >= 1000:
        exp += 1
    scaled = value / 1000**exp
    rounded = float(f"{scaled:.3g}")
    digits = max(0, 2 - math.floor(math.log10(rounded)))
    return f"{sign}{scaled:.{digits}f} {_UNITS[exp]}"


def quota_bytes(value: float | None, unit: int, option: str) -> int | None:
    """Bytes of a quota given as ``value`` units (``unit`` bytes each); ``None``: no quota.

    Raises :class:`ConfigError` naming ``option`` and the value when it is not a
    number above zero, is infinite, or is smaller than one byte.
    """
    if value is None:
        return None
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ConfigError(f"{option} {value!r}: a quota must be a finite number above zero "
                          f"(leave {option} out for no limit)")
    nbytes = value * unit
    if not math.isfinite(nbytes) or nbytes >= 2**63:
        raise ConfigError(f"{option} {value!r} is too large to be a quota; leave {option} out "
                          "for no limit")
    if nbytes < 1:
        raise ConfigError(f"{option} {value!r} is less than one byte (the unit is "
                          f"{format_bytes(unit)})")
    return int(nbytes)


def size_problem(value: object) -> str:
    """Why ``value`` cannot be a byte count (``""`` if it can): it must be an ``int``,
    not a bool, from 0 to :data:`MAX_BYTES`. Strings and floats are refused, not
    converted: ``"2048"`` or ``1.5`` in a manifest means the manifest is not what
    the reader thinks it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"is a {type(value).__name__}, not a whole number of bytes"
    if value < 0:
        return "is negative"
    if value > MAX_BYTES:
        return f"is larger than {format_bytes(MAX_BYTES)}, more than a file can hold"
    return ""
