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
from exocube.params import MODEL_INPUT_V1, SPECS, ParamSpec

#: sampling order of the hypercube's axes (also its random stream: do not reorder). The
#: generator's ranges are still the ones the v1 models were trained on
#: (:data:`exocube.params.MODEL_INPUT_V1`, frozen); to change them, write them out here.
GENERATOR_SPECS: tuple[ParamSpec, ...] = (
    *MODEL_INPUT_V1,
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
