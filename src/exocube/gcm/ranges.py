"""The built-in analytic generator's own parameter ranges.

The generator (:mod:`exocube.gcm.generator`) is calibrated for terrestrial
planets (0.5 to 2.5 Earth radii) with an Earth-like N2/CO2/H2O atmosphere of
0.1 to 2 bar around M to F dwarfs, and has no CH4. These ranges are narrower
than the physical validity bounds of :mod:`exocube.params` (which real GCM runs
are checked against); they are used only where the generator samples or accepts
a planet: its Latin hypercube (:mod:`exocube.gcm.sampling`), its CSV rows and
:func:`exocube.gcm.generator.generate`. A planet outside them is refused with a
:class:`~exocube.errors.ParameterError` naming the field, the value and the
generator's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from exocube.errors import ParameterError
from exocube.params import SPECS, ParamSpec

#: sampling order of the hypercube's axes (also its random stream: do not reorder)
GENERATOR_SPECS: tuple[ParamSpec, ...] = (
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
    ParamSpec("pch4_bar", "bar", "CH4 partial pressure", 0.0, 0.0),
)
GENERATOR_RANGES: dict[str, ParamSpec] = {s.name: s for s in GENERATOR_SPECS}
#: the parameters the hypercube samples (``pch4_bar`` is fixed at 0)
SAMPLED_NAMES: tuple[str, ...] = tuple(s.name for s in GENERATOR_SPECS if s.low < s.high)


def check_generator_range(values: Mapping[str, object]) -> None:
    """Refuse a parameter outside the generator's range (absent optional parameters take
    their defaults, which lie inside it)."""
    for spec in GENERATOR_SPECS:
        value = values.get(spec.name, SPECS[spec.name].default)
        try:
            x = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            x = math.nan
        if not (math.isfinite(x) and spec.low <= x <= spec.high):
            raise ParameterError(
                spec.name, value,
                f"a finite number in [{spec.low}, {spec.high}] {spec.units}, the built-in "
                "generator's range",
                hint="the analytic generator cannot simulate this planet; real GCM runs "
                     "accept the wider validity bounds of docs/parameters.md")
