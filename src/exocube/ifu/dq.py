"""JWST data-quality flags and the bit set that turns a DQ array into a mask.

The bit values are those of the JWST pipeline's data-quality table
(``jwst.datamodels.dqflags.pixel``, JWST technical report JWST-STScI-004228).
In a resampled s3d cube most of them are carried over from the detector
pixels; ``DO_NOT_USE | NON_SCIENCE`` (513) marks voxels without coverage,
which are NaN in SCI and ERR.

The default mask set is ``DO_NOT_USE`` and ``NON_SCIENCE``: what the pipeline
itself excludes from science. Other bits (``OUTLIER``, ``SATURATED``, ...)
flag voxels that the pipeline kept; add them with ``mask_bits`` when a fit
should ignore them too.
"""

from __future__ import annotations

from collections.abc import Iterable

from exocube.errors import CubeFormatError

JWST_DQ_FLAGS: dict[str, int] = {
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "UNRELIABLE_ERROR": 1 << 8,
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "FLUX_ESTIMATED": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}

DEFAULT_MASK_FLAGS: tuple[str, ...] = ("DO_NOT_USE", "NON_SCIENCE")


def mask_bits(flags: Iterable[str | int] = DEFAULT_MASK_FLAGS) -> int:
    """The OR of the named (or integer) DQ flags; unknown names are an error."""
    bits = 0
    for flag in flags:
        if isinstance(flag, int):
            if not 0 <= flag < 2**32:
                raise CubeFormatError(f"DQ bit value {flag} is outside 0..2**32-1; "
                                      "give JWST flag names or 32-bit values")
            bits |= flag
            continue
        name = str(flag).strip().upper()
        if name.isdigit():  # a bit value given as text, e.g. on the command line
            bits |= mask_bits([int(name)])
            continue
        if name not in JWST_DQ_FLAGS:
            raise CubeFormatError(f"unknown JWST DQ flag {flag!r}; known: "
                                  f"{', '.join(JWST_DQ_FLAGS)}")
        bits |= JWST_DQ_FLAGS[name]
    return bits


def flag_names(value: int) -> list[str]:
    """The names of the flags set in one DQ value (for messages and docs)."""
    return [name for name, bit in JWST_DQ_FLAGS.items() if value & bit]
