"""The planet and star parameter vector: names, units, physical validity bounds.

These are the API's request fields, the per-run variables of a cube store and
the columns of an ExoPlaSim design (see ``../shared/DESIGN.md``). Three domains
are kept apart (docs/parameters.md):

- the *physical validity bounds* here (:data:`SPECS`): what any GCM could
  represent for a rocky planet with an atmosphere around an M to A star.
  Stores, ingest, validation, the API, prediction and the ExoPlaSim design
  reader check them; a value outside is refused with
  :class:`~exocube.errors.ParameterError` naming field, value and bound.
  Partial pressures are also checked against each other:
  ``pco2_bar <= surface_pressure_bar`` and ``pco2_bar + pch4_bar <= surface_pressure_bar``;
- the built-in generator's own sampling ranges (:mod:`exocube.gcm.sampling`);
- a trained model's domain, its training hull (:mod:`exocube.ml.hull`).

:data:`MODEL_INPUT_V1` is the parameter vector models were trained on before
``pch4_bar`` existed: its names, order and the ranges that scale each one onto
[-1, 1]. It is frozen, so checkpoints trained with it keep their meaning.

Optional atmosphere fields default to Earth-like values when absent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from exocube.errors import ParameterError

#: relative slack of the partial-pressure sums (so ``0.7 + 0.3 <= 1.0`` holds in floats)
PRESSURE_SUM_RTOL = 1e-9


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, unit, closed range and natural (log or linear) scale."""

    name: str
    units: str
    long_name: str
    low: float
    high: float
    log_scale: bool = False
    default: float | None = None

    def check(self, value: object) -> float:
        """Return ``value`` as a float, or raise ParameterError naming field, value and range."""
        try:
            x = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ParameterError(self.name, value, f"a number in [{self.low}, {self.high}] "
                                 f"{self.units}") from None
        if not math.isfinite(x) or not (self.low <= x <= self.high):
            raise ParameterError(
                self.name, value, f"a finite number in [{self.low}, {self.high}] {self.units}"
            )
        return x


# -- physical validity bounds (docs/parameters.md gives the reasoning for each number) --------
REQUIRED: tuple[ParamSpec, ...] = (
    ParamSpec("radius_earth", "R_earth", "planet radius", 0.25, 3.0),
    ParamSpec("mass_earth", "M_earth", "planet mass", 0.01, 30.0, log_scale=True),
    ParamSpec("orbital_period_days", "day", "orbital period", 0.05, 1.0e4, log_scale=True),
    ParamSpec("insolation_earth", "S_earth", "top-of-atmosphere insolation", 1.0e-3, 1.0e4,
              log_scale=True),
    ParamSpec("stellar_teff_k", "K", "stellar effective temperature", 2300.0, 10000.0),
    ParamSpec("stellar_logg_cgs", "log10(cm s-2)", "stellar surface gravity", 3.0, 5.5),
    ParamSpec("stellar_metallicity_dex", "dex", "stellar metallicity [Fe/H]", -2.0, 1.0),
    ParamSpec("host_mass_msun", "M_sun", "host star mass", 0.075, 3.0),
)

OPTIONAL: tuple[ParamSpec, ...] = (
    ParamSpec("surface_pressure_bar", "bar", "surface pressure", 0.01, 100.0, log_scale=True,
              default=1.0),
    ParamSpec("pco2_bar", "bar", "CO2 partial pressure", 0.0, 100.0, default=4e-4),
    ParamSpec("rotation_period_days", "day", "rotation period (ignored when tidally locked)",
              0.05, 1.0e4, log_scale=True, default=1.0),
    ParamSpec("pch4_bar", "bar", "CH4 partial pressure", 0.0, 100.0, default=0.0),
)

SPECS: dict[str, ParamSpec] = {s.name: s for s in REQUIRED + OPTIONAL}
REQUIRED_NAMES: tuple[str, ...] = tuple(s.name for s in REQUIRED)
OPTIONAL_NAMES: tuple[str, ...] = tuple(s.name for s in OPTIONAL)
ALL_NAMES: tuple[str, ...] = REQUIRED_NAMES + OPTIONAL_NAMES
#: defaults of the optional parameters; ``{**OPTIONAL_DEFAULTS, **record}`` reads a record
#: (store manifest, NetCDF attributes, catalogue row) made before one of them existed
OPTIONAL_DEFAULTS: dict[str, float] = {s.name: float(s.default) for s in OPTIONAL
                                       if s.default is not None}

# -- the v1 model input vector (frozen: trained checkpoints depend on it) -----------------------
MODEL_INPUT_V1: tuple[ParamSpec, ...] = (
    ParamSpec("radius_earth", "R_earth", "planet radius", 0.5, 2.5),
    ParamSpec("mass_earth", "M_earth", "planet mass", 0.1, 12.0, log_scale=True),
    ParamSpec("orbital_period_days", "day", "orbital period", 0.5, 500.0, log_scale=True),
    ParamSpec("insolation_earth", "S_earth", "top-of-atmosphere insolation", 0.1, 3.0),
    ParamSpec("stellar_teff_k", "K", "stellar effective temperature", 2300.0, 7000.0),
    ParamSpec("stellar_logg_cgs", "log10(cm s-2)", "stellar surface gravity", 3.5, 5.5),
    ParamSpec("stellar_metallicity_dex", "dex", "stellar metallicity [Fe/H]", -1.0, 0.6),
    ParamSpec("host_mass_msun", "M_sun", "host star mass", 0.08, 1.5),
    ParamSpec("surface_pressure_bar", "bar", "surface pressure", 0.1, 2.0, log_scale=True),
    ParamSpec("pco2_bar", "bar", "CO2 partial pressure", 1e-6, 1.0, log_scale=True),
    ParamSpec("rotation_period_days", "day", "rotation period", 0.25, 500.0, log_scale=True),
)
MODEL_INPUT_SPECS_V1: dict[str, ParamSpec] = {s.name: s for s in MODEL_INPUT_V1}
MODEL_INPUT_NAMES_V1: tuple[str, ...] = tuple(s.name for s in MODEL_INPUT_V1)

# -- the v2 model input vector: the planet's climate drivers (exocube.planet.climate_drivers) ---
#: Gravity replaces mass, the effective rotation period (the orbital period when tidally
#: locked) replaces the orbital period, and the star enters by its flux and effective
#: temperature only: host mass, stellar log g and metallicity are no model input. The ranges
#: of the names shared with v1 are v1's; frozen once models are trained with it.
MODEL_INPUT_V2: tuple[ParamSpec, ...] = (
    MODEL_INPUT_SPECS_V1["radius_earth"],
    ParamSpec("gravity_m_s2", "m s-2", "surface gravity", 1.0, 50.0, log_scale=True),
    MODEL_INPUT_SPECS_V1["rotation_period_days"],
    MODEL_INPUT_SPECS_V1["insolation_earth"],
    MODEL_INPUT_SPECS_V1["stellar_teff_k"],
    MODEL_INPUT_SPECS_V1["surface_pressure_bar"],
    MODEL_INPUT_SPECS_V1["pco2_bar"],
    ParamSpec("pch4_bar", "bar", "CH4 partial pressure", 1e-6, 1.0, log_scale=True),
)
MODEL_INPUT_SPECS_V2: dict[str, ParamSpec] = {s.name: s for s in MODEL_INPUT_V2}
MODEL_INPUT_NAMES_V2: tuple[str, ...] = tuple(s.name for s in MODEL_INPUT_V2)
#: The input vectors by version (the ``inputs`` option of the datamodule).
MODEL_INPUTS: dict[str, tuple[ParamSpec, ...]] = {"v1": MODEL_INPUT_V1, "v2": MODEL_INPUT_V2}


def validate_params(
    values: Mapping[str, object], *, fill_defaults: bool = True,
    required: Iterable[str] = REQUIRED_NAMES,
) -> dict[str, float]:
    """Check a parameter mapping; return floats for every known field.

    ``required`` are the fields that must be given (by default every field of
    :data:`REQUIRED`; a model that needs fewer passes its own). Missing required fields,
    unknown fields, non-numbers, NaN, values outside the validity bounds and partial
    pressures above the surface pressure raise :class:`ParameterError` naming the field,
    the value and the bound.
    """
    unknown = sorted(set(values) - set(SPECS))
    if unknown:
        raise ParameterError(unknown[0], values[unknown[0]],
                             f"one of the known parameters {', '.join(ALL_NAMES)}")
    missing = [n for n in required if n not in values]
    if missing:
        spec = SPECS[missing[0]]
        raise ParameterError(missing[0], None, f"a value in [{spec.low}, {spec.high}] "
                             f"{spec.units}", hint=f"missing required fields: {missing}")
    out = {name: SPECS[name].check(v) for name, v in values.items()}
    check_partial_pressures(out)
    if fill_defaults:
        for spec in OPTIONAL:
            out.setdefault(spec.name, spec.default)  # type: ignore[arg-type]
    return out


# Column-name aliases: the one table for the generator's CSV reader, ingest's
# parameter CSV, the surrogate's catalogue batch and the API's request fields.

#: The NASA Exoplanet Archive ``pscomppars`` column of each required parameter.
ARCHIVE_COLUMNS: dict[str, str] = {
    "radius_earth": "pl_rade",
    "mass_earth": "pl_bmasse",
    "orbital_period_days": "pl_orbper",
    "insolation_earth": "pl_insol",
    "stellar_teff_k": "st_teff",
    "stellar_logg_cgs": "st_logg",
    "stellar_metallicity_dex": "st_met",
    "host_mass_msun": "st_mass",
}
#: The earlier in-house system's name of a parameter (also a request field of the API).
LEGACY_NAMES: dict[str, str] = {
    "orbital_period_days": "orbital_period",
    "insolation_earth": "insolation",
    "stellar_teff_k": "stellar_teff",
    "stellar_logg_cgs": "stellar_logg",
    "stellar_metallicity_dex": "stellar_metallicity",
    "host_mass_msun": "host_mass",
}
#: A parameter's other CSV column names, in the order they are tried after its own.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    name: tuple(a for a in (ARCHIVE_COLUMNS.get(name), LEGACY_NAMES.get(name)) if a)
    for name in ALL_NAMES if name in ARCHIVE_COLUMNS or name in LEGACY_NAMES
}


def from_legacy_name(name: str) -> str:
    """The parameter an earlier-system name stands for; any other name unchanged."""
    return _FROM_LEGACY.get(name, name)


def parameter_columns(columns: Iterable[str]) -> dict[str, str]:
    """Parameter name -> its column among ``columns``: its own name, else the first alias."""
    present = set(columns)
    found: dict[str, str] = {}
    for name in ALL_NAMES:
        for candidate in (name, *COLUMN_ALIASES.get(name, ())):
            if candidate in present:
                found[name] = candidate
                break
    return found


_FROM_LEGACY: dict[str, str] = {alias: name for name, alias in LEGACY_NAMES.items()}
def check_partial_pressures(values: Mapping[str, float]) -> None:
    """Refuse CO2 and CH4 partial pressures that do not fit in the surface pressure
    (absent fields take their defaults); the message names both fields."""
    ps = float(values.get("surface_pressure_bar", SPECS["surface_pressure_bar"].default))
    pco2 = float(values.get("pco2_bar", SPECS["pco2_bar"].default))
    pch4 = float(values.get("pch4_bar", SPECS["pch4_bar"].default))
    limit = ps * (1.0 + PRESSURE_SUM_RTOL)
    if pco2 > limit:
        raise ParameterError("pco2_bar", pco2, f"at most surface_pressure_bar = {ps:g} bar",
                             hint="a CO2 partial pressure cannot exceed the surface pressure "
                                  "(pco2_bar = surface_pressure_bar is a pure-CO2 atmosphere)")
    if pco2 + pch4 > limit:
        raise ParameterError(
            "pch4_bar", pch4, f"at most surface_pressure_bar - pco2_bar = {ps - pco2:g} bar "
            f"(surface_pressure_bar = {ps:g}, pco2_bar = {pco2:g})",
            hint="pco2_bar + pch4_bar cannot exceed the surface pressure")
