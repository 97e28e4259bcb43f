"""Priors of the forward models' parameters, checked against each parameter's range.

A prior is ``[kind, a, b]``: ``["uniform", low, high]``, ``["loguniform", low,
high]``, ``["normal", mean, sd]`` (truncated to the parameter's range) or
``["fixed", value]`` (not sampled). Every bound of a prior must lie inside the
parameter's range (:mod:`exocube.ifu.params`), else :class:`PriorError` names the
parameter, the prior and the range. :data:`DEFAULT_PRIORS` holds each model's
defaults (the table in docs/ifu.md); a TOML file's ``[priors]`` table overrides them
one parameter at a time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exocube.errors import ModelParameterError
from exocube.ifu.params import ParamSpec, read_model_table, spec_for


class PriorError(ModelParameterError):
    """A prior is malformed or reaches outside its parameter's range."""


KINDS = {"uniform": 2, "loguniform": 2, "normal": 2, "fixed": 1}

# Line block shared by the models: log ratios uniform over their ranges.
_LINE_PRIORS: dict[str, tuple] = {
    "log_oiii_ha": ("uniform", -3.0, 1.5), "log_nii_ha": ("uniform", -3.0, 1.0),
    "log_sii_ha": ("uniform", -3.0, 1.0), "sii_ratio": ("uniform", 0.44, 1.45),
    "log_oi_ha": ("uniform", -3.0, 1.0), "log_siii_ha": ("uniform", -3.0, 1.0),
}
_DISK_COMMON: dict[str, tuple] = {
    "x0": ("uniform", -3.0, 3.0), "y0": ("uniform", -3.0, 3.0),
    "pa_deg": ("uniform", -180.0, 180.0), "incl_deg": ("uniform", 0.0, 90.0),
    "v_sys": ("normal", 0.0, 200.0), "sigma": ("loguniform", 5.0, 300.0),
    "h_r": ("loguniform", 0.1, 30.0), "z0": ("loguniform", 0.05, 10.0),
    "sb_halpha": ("loguniform", 0.01, 1e4),
}
DEFAULT_PRIORS: dict[str, dict[str, tuple]] = {
    "bowshock": {
        "x0": ("uniform", -3.0, 3.0), "y0": ("uniform", -3.0, 3.0),
        "pa_deg": ("uniform", -180.0, 180.0), "v_bh": ("uniform", 100.0, 2000.0),
        "incl_deg": ("uniform", -90.0, 90.0), "compression": ("fixed", 4.0),
        "v_far": ("uniform", -800.0, 800.0), "wake_decline": ("loguniform", 0.05, 50.0),
        "shock_width": ("fixed", 0.01), "v_sys": ("normal", 0.0, 200.0),
        "sigma": ("loguniform", 5.0, 300.0), "sb_tip": ("loguniform", 0.01, 1e4),
        "r_tip": ("loguniform", 0.02, 5.0), "sb_wake": ("loguniform", 0.01, 1e4),
        "wake_width": ("loguniform", 0.02, 5.0), "wake_length": ("loguniform", 0.1, 100.0),
        **_LINE_PRIORS,
    },
    "disk": {
        **_DISK_COMMON, "log_m_disk": ("uniform", 6.0, 12.5),
        "a_disk": ("loguniform", 0.05, 30.0), "b_disk": ("loguniform", 0.01, 10.0),
        "vmax_halo": ("uniform", 1.0, 500.0), "rs_halo": ("loguniform", 0.5, 200.0),
        **_LINE_PRIORS,
    },
    "disk_arctan": {
        **_DISK_COMMON, "vmax": ("uniform", 1.0, 500.0),
        "r_turn": ("loguniform", 0.05, 30.0), **_LINE_PRIORS,
    },
}


@dataclass(frozen=True)
class Prior:
    """One parameter's prior; :meth:`distribution` is its numpyro distribution."""

    name: str
    kind: str
    args: tuple[float, ...]
    spec: ParamSpec

    @property
    def fixed(self) -> bool:
        return self.kind == "fixed"

    def distribution(self):
        import numpyro.distributions as dist

        a, b = (float(x) for x in self.args)
        if self.kind == "uniform":
            return dist.Uniform(a, b)
        if self.kind == "loguniform":
            return dist.LogUniform(a, b)
        return dist.TruncatedNormal(a, b, low=self.spec.low, high=self.spec.high)

    def centre(self) -> float:
        """A central value (the fixed value, the median of a uniform / log-uniform)."""
        a = float(self.args[0])
        if self.kind == "fixed" or self.kind == "normal":
            return min(max(a, self.spec.low), self.spec.high)
        b = float(self.args[1])
        return math.sqrt(a * b) if self.kind == "loguniform" else 0.5 * (a + b)

    def to_json(self) -> list:
        return [self.kind, *self.args]


def make_prior(spec: ParamSpec, value: Any) -> Prior:
    """A checked :class:`Prior` for ``spec`` from ``[kind, a, b]`` (see the module docstring)."""
    field = f"prior {spec.name}"
    rng = f"[{spec.low}, {spec.high}] {spec.unit}".rstrip()
    if (not isinstance(value, Sequence) or isinstance(value, str) or not value
            or value[0] not in KINDS):
        raise PriorError(field, value, f"[kind, ...] with kind one of {sorted(KINDS)}")
    kind, args = value[0], tuple(value[1:])
    if len(args) != KINDS[kind] or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in args):
        raise PriorError(field, list(value), f"{kind!r} with {KINDS[kind]} finite number(s)")
    args = tuple(float(x) for x in args)
    inside = [spec.low <= x <= spec.high for x in (args if kind != "normal" else args[:1])]
    if not all(inside):
        raise PriorError(field, list(value), f"bounds inside the parameter's range {rng}",
                         f"({spec.doc})")
    if kind in ("uniform", "loguniform") and not args[0] < args[1]:
        raise PriorError(field, list(value), "low < high")
    if kind == "loguniform" and args[0] <= 0:
        raise PriorError(field, list(value), "0 < low for a log-uniform prior")
    if kind == "normal" and not args[1] > 0:
        raise PriorError(field, list(value), "a positive sd")
    return Prior(spec.name, kind, args, spec)


def priors_for(model: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Prior]:
    """The model's default priors overlaid with ``overrides``, every one checked."""
    specs = {p.name: p for p in spec_for(model)}
    merged: dict[str, Any] = dict(DEFAULT_PRIORS[model])
    for name, value in (overrides or {}).items():
        if name not in specs:
            raise PriorError(f"prior {name}", value, f"a parameter of model {model!r}",
                             f"known: {', '.join(specs)}")
        merged[name] = value
    return {name: make_prior(specs[name], list(merged[name])) for name in specs}


def load_priors_toml(path: str | Path, model: str) -> dict[str, Prior]:
    """Priors from a TOML file with a ``[priors]`` table (and optionally ``model``)."""
    path = Path(path)
    table = read_model_table(path, model, "priors", PriorError)
    try:
        return priors_for(model, table)
    except PriorError as exc:
        raise PriorError(f"{path}: {exc.field}", exc.value, exc.valid, exc.hint) from None


def priors_json(priors: Mapping[str, Prior]) -> dict[str, list]:
    """The priors as JSON (provenance)."""
    return {name: p.to_json() for name, p in priors.items()}


def fix_unused_lines(priors: dict[str, Prior], line_names: Sequence[str]) -> dict[str, Prior]:
    """Fix (at their defaults) the line-ratio parameters no fitted line depends on."""
    uses = {"log_oiii_ha": ("[OIII]5008", "[OIII]4960"),
            "log_nii_ha": ("[NII]6585", "[NII]6550"),
            "log_sii_ha": ("[SII]6718", "[SII]6733"), "sii_ratio": ("[SII]6718", "[SII]6733"),
            "log_oi_ha": ("[OI]6302",), "log_siii_ha": ("[SIII]9533", "[SIII]9071")}
    out = dict(priors)
    for name, lines in uses.items():
        if name in out and not out[name].fixed and not set(lines) & set(line_names):
            spec = out[name].spec
            out[name] = Prior(name, "fixed", (spec.default,), spec)
    return out
