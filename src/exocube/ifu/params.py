"""Forward-model parameters: names, units, ranges, defaults; strict TOML loading.

Each model has one tuple of :class:`ParamSpec`. A parameter set is a mapping
name -> value; :func:`check_params` fills defaults, and refuses an unknown
name, a value that is not a finite number, or one outside its range, naming
the parameter, the value, the range and the fix.

The line block is shared by both models: ``sb_*`` set Halpha, and every other
free line is a log10 ratio to Halpha. [SII] is given as the log of the
doublet's sum over Halpha and the ratio 6718/6733 (0.44 to 1.45, the low- and
high-density limits; Osterbrock and Ferland 2006). Tied lines ([OIII]4960,
[NII]6550, [SIII]9071) follow :mod:`exocube.ifu.lines`.
"""

from __future__ import annotations

import math
import numbers
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exocube.errors import ModelParameterError


@dataclass(frozen=True)
class ParamSpec:
    """One model parameter: name, unit, inclusive range, default and meaning."""

    name: str
    unit: str
    low: float
    high: float
    default: float
    doc: str


def _lines(oiii: float, nii: float, sii: float, oi: float, siii: float) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("log_oiii_ha", "dex", -3.0, 1.5, oiii, "log10 [OIII]5008 / Halpha"),
        ParamSpec("log_nii_ha", "dex", -3.0, 1.0, nii, "log10 [NII]6585 / Halpha"),
        ParamSpec("log_sii_ha", "dex", -3.0, 1.0, sii, "log10 ([SII]6718 + 6733) / Halpha"),
        ParamSpec("sii_ratio", "", 0.44, 1.45, 1.3, "[SII] 6718 / 6733 (density)"),
        ParamSpec("log_oi_ha", "dex", -3.0, 1.0, oi, "log10 [OI]6302 / Halpha"),
        ParamSpec("log_siii_ha", "dex", -3.0, 1.0, siii, "log10 [SIII]9533 / Halpha"),
    )


BOWSHOCK: tuple[ParamSpec, ...] = (
    ParamSpec("x0", "arcsec", -10.0, 10.0, 0.0, "tip offset east of the reference pixel"),
    ParamSpec("y0", "arcsec", -10.0, 10.0, 0.0, "tip offset north of the reference pixel"),
    ParamSpec("pa_deg", "deg", -360.0, 360.0, 30.0,
              "position angle (N through E) of the black hole's motion; the wake trails "
              "opposite"),
    ParamSpec("v_bh", "km/s", 0.0, 3000.0, 954.0, "black hole speed through the CGM"),
    ParamSpec("incl_deg", "deg", -90.0, 90.0, 29.0,
              "angle of the motion out of the sky plane; > 0 away from the observer (the "
              "shocked gas redshifted), < 0 toward"),
    ParamSpec("compression", "", 1.0, 4.0, 4.0,
              "shock density compression ratio r (4: strong adiabatic shock)"),
    ParamSpec("v_far", "km/s", -1000.0, 1000.0, 100.0,
              "line-of-sight velocity far down the wake (mixed with the CGM)"),
    ParamSpec("wake_decline", "arcsec", 0.05, 50.0, 3.0,
              "e-folding length of the wake velocity's decline from the tip"),
    ParamSpec("shock_width", "arcsec", 0.002, 0.5, 0.01, "width of the velocity jump"),
    ParamSpec("v_sys", "km/s", -1000.0, 1000.0, 0.0, "systemic velocity of the CGM"),
    ParamSpec("sigma", "km/s", 1.0, 500.0, 60.0, "intrinsic velocity dispersion"),
    ParamSpec("sb_tip", "1e-18 erg/s/cm2/arcsec2", 0.0, 1e5, 20.0,
              "Halpha surface brightness of the tip knot"),
    ParamSpec("r_tip", "arcsec", 0.02, 5.0, 0.15, "Gaussian radius of the tip knot"),
    ParamSpec("sb_wake", "1e-18 erg/s/cm2/arcsec2", 0.0, 1e5, 10.0,
              "Halpha surface brightness of the wake at the tip"),
    ParamSpec("wake_width", "arcsec", 0.02, 5.0, 0.2, "Gaussian half-width of the wake"),
    ParamSpec("wake_length", "arcsec", 0.1, 100.0, 3.0, "e-folding length of the wake's SB"),
    *_lines(oiii=0.0, nii=-0.5, sii=-0.4, oi=-1.0, siii=-0.6),
)

_DISK_COMMON: tuple[ParamSpec, ...] = (
    ParamSpec("x0", "arcsec", -10.0, 10.0, 0.0, "disk centre offset east"),
    ParamSpec("y0", "arcsec", -10.0, 10.0, 0.0, "disk centre offset north"),
    ParamSpec("pa_deg", "deg", -360.0, 360.0, 30.0,
              "position angle (N through E) of the receding major axis"),
    ParamSpec("incl_deg", "deg", 0.0, 90.0, 85.0, "inclination (90: edge-on)"),
    ParamSpec("v_sys", "km/s", -1000.0, 1000.0, 0.0, "systemic velocity"),
    ParamSpec("sigma", "km/s", 1.0, 500.0, 30.0, "intrinsic velocity dispersion"),
    ParamSpec("h_r", "kpc", 0.1, 30.0, 3.0, "exponential scale length of the emission"),
    ParamSpec("z0", "kpc", 0.05, 10.0, 1.2, "sech^2 scale height of the emission"),
    ParamSpec("sb_halpha", "1e-18 erg/s/cm2/arcsec2", 0.0, 1e5, 5.0,
              "face-on central Halpha surface brightness"),
)

DISK: tuple[ParamSpec, ...] = (
    *_DISK_COMMON,
    ParamSpec("log_m_disk", "log10 Msun", 6.0, 12.5, math.log10(3e9),
              "Miyamoto-Nagai disk mass"),
    ParamSpec("a_disk", "kpc", 0.05, 30.0, 2.5, "Miyamoto-Nagai radial scale a"),
    ParamSpec("b_disk", "kpc", 0.01, 10.0, 1.2, "Miyamoto-Nagai vertical scale b"),
    ParamSpec("vmax_halo", "km/s", 1.0, 500.0, 105.0, "NFW halo peak circular velocity"),
    ParamSpec("rs_halo", "kpc", 0.5, 200.0, 10.0, "NFW scale radius"),
    *_lines(oiii=-0.3, nii=-1.7, sii=-1.1, oi=-2.0, siii=-0.8),
)

DISK_ARCTAN: tuple[ParamSpec, ...] = (
    *_DISK_COMMON,
    ParamSpec("vmax", "km/s", 1.0, 500.0, 110.0, "asymptotic rotation velocity"),
    ParamSpec("r_turn", "kpc", 0.05, 30.0, 1.5, "turnover radius of the arctan curve"),
    *_lines(oiii=-0.3, nii=-1.7, sii=-1.1, oi=-2.0, siii=-0.8),
)

SPECS: dict[str, tuple[ParamSpec, ...]] = {"bowshock": BOWSHOCK, "disk": DISK,
                                           "disk_arctan": DISK_ARCTAN}


def spec_for(model: str) -> tuple[ParamSpec, ...]:
    if model not in SPECS:
        raise ModelParameterError("model", model, f"one of {sorted(SPECS)}")
    return SPECS[model]


def defaults(model: str) -> dict[str, float]:
    return {p.name: p.default for p in spec_for(model)}


def _as_float(value: Any) -> float | None:
    """A finite real number (Python, numpy or a 0-d array) as a float; None otherwise."""
    if isinstance(value, bool | np.bool_ | str | bytes):
        return None
    if not isinstance(value, numbers.Real):
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind not in ("i", "u", "f") or np.ndim(value) != 0:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_params(model: str, values: Mapping[str, Any]) -> dict[str, float]:
    """Defaults overlaid with ``values``, every name known and every value in range."""
    spec = {p.name: p for p in spec_for(model)}
    out = defaults(model)
    for name, value in values.items():
        if name not in spec:
            raise ModelParameterError(name, value, f"a parameter of model {model!r}",
                                      f"known: {', '.join(spec)}")
        p = spec[name]
        number = _as_float(value)
        if number is None:
            raise ModelParameterError(name, value, f"a finite number in {p.unit or 'units'}")
        if not p.low <= number <= p.high:
            raise ModelParameterError(name, value, f"{p.low} <= {name} <= {p.high} {p.unit}",
                                      f"({p.doc})")
        out[name] = number
    return out


def read_model_table(path: Path, model: str, key: str,
                     error: type[ModelParameterError] = ModelParameterError) -> dict[str, Any]:
    """The ``[key]`` table of a TOML file that may also name its ``model``; ``error``
    (naming the file and the key) when the file is unreadable or holds anything else."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise error(key, str(path), "a readable TOML file", str(exc)) from exc
    extra = set(doc) - {"model", key}
    if extra:
        raise error(f"{path}: key {sorted(extra)[0]}", doc[sorted(extra)[0]],
                    f"only 'model' and a [{key}] table")
    if "model" in doc and doc["model"] != model:
        raise error(f"{path}: model", doc["model"], f"{model!r} (as requested)")
    table = doc.get(key, {})
    if not isinstance(table, dict):
        raise error(f"{path}: {key}", table, f"a [{key}] table")
    return table


def load_params_toml(path: str | Path, model: str) -> dict[str, float]:
    """Parameters from a TOML file: a ``[params]`` table, optionally ``model = "..."``."""
    path = Path(path)
    params = read_model_table(path, model, "params")
    try:
        return check_params(model, params)
    except ModelParameterError as exc:  # say which file holds the bad value
        raise ModelParameterError(f"{path}: {exc.field}", exc.value, exc.valid,
                                  exc.hint) from None
