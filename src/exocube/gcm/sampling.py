"""Parameter vectors for an ensemble: a Latin hypercube over the generator's ranges, or CSV rows.

The ranges are the built-in generator's own (:mod:`exocube.gcm.ranges`), not the
wider physical validity bounds of :mod:`exocube.params`; ``pch4_bar`` is fixed at 0.

The hypercube has one sample in each of ``n`` equal strata of every
parameter's unit interval, mapped linearly onto ``[low, high]`` or, for
parameters with ``log_scale``, log-uniformly. Two ranges depend on earlier
parameters: ``mass_earth`` is mapped onto the masses that give the sampled
radius a bulk density of 0.25 to 2 times Earth's (:func:`mass_bounds`), and
``pco2_bar`` onto ``[low, min(high, surface_pressure_bar)]`` so that the CO2
partial pressure never exceeds the surface pressure. The strata are equal in
the unit cube; for these two parameters they are not equal in the value.

CSV columns are matched by exocube parameter name first, then by the NASA
Exoplanet Archive ``pscomppars`` names (``pl_rade``, ``pl_bmasse``,
``pl_orbper``, ``pl_insol``, ``st_teff``, ``st_logg``, ``st_met``, ``st_mass``),
then by the earlier in-house system's names (``orbital_period``, ``insolation``,
...): the table of :func:`exocube.params.parameter_columns`. Lines starting
with ``#`` are comments. Run ids come from the first of the columns ``name``,
``planet_name``, ``pl_name`` and ``run_id`` (an ``exocube simulate`` design CSV) the
file has. A row with a missing, non-numeric or out-of-range
value (outside the validity bounds or the generator's range) is an error naming
the row and the field, unless the caller asks to skip such rows
(``on_invalid="skip"``): each is logged, and the count.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from exocube.errors import InputDataError, ParameterError
from exocube.gcm.ranges import GENERATOR_RANGES, SAMPLED_NAMES, check_generator_range
from exocube.gcm.runs import RunSpec
from exocube.params import (
    COLUMN_ALIASES,
    OPTIONAL_NAMES,
    REQUIRED_NAMES,
    parameter_columns,
    validate_params,
)
from exocube.planet import derive

log = logging.getLogger(__name__)

NAME_COLUMNS: tuple[str, ...] = ("name", "planet_name", "pl_name", "run_id")

OnInvalid = Literal["raise", "skip"]
DENSITY_RANGE = (0.25, 2.0)  # bulk density / Earth's, for sampled masses


def run_id_for(seed: int, n: int, index: int) -> str:
    """The file-contract run id of sample ``index`` of the ``n``-run hypercube of ``seed``.

    The hypercube's points depend on ``n`` as well as the seed, so both are in the id:
    ensembles of other sizes never share an id, and a re-run of the same one does.
    """
    return f"gen-s{seed}-n{n}-{index:05d}"


def latin_hypercube(n: int, dims: int, seed: int) -> NDArray[np.float64]:
    """``n`` points in ``[0, 1)^dims``, one in each of the ``n`` strata of every axis."""
    if n < 1:
        raise ParameterError("runs", n, "an integer >= 1")
    rng = np.random.default_rng(seed)
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1)
    return (strata + rng.random((n, dims))) / n


def scale_to_ranges(unit: NDArray[np.float64]) -> list[dict[str, float]]:
    """Map unit-cube rows onto the generator's ranges (order of ``SAMPLED_NAMES``)."""
    rows = []
    for u in unit:
        values: dict[str, float] = {}
        for name, x in zip(SAMPLED_NAMES, u, strict=True):
            spec = GENERATOR_RANGES[name]
            high = spec.high
            low = spec.low
            if name == "mass_earth":
                low, high = mass_bounds(values["radius_earth"])
            if name == "pco2_bar":
                high = min(high, values["surface_pressure_bar"])
            values[name] = _scale(float(x), low, high, spec.log_scale)
        rows.append(values)
    return rows


def mass_bounds(radius_earth: float) -> tuple[float, float]:
    """Masses [M_earth] of a planet of this radius with a plausible bulk density.

    Mean density between 0.25 and 2 times Earth's (``M / R^3`` in Earth units),
    within the generator's ``mass_earth`` range: from ice-rich worlds to iron-rich,
    compressed super-Earths.
    """
    spec = GENERATOR_RANGES["mass_earth"]
    r3 = radius_earth**3
    return max(spec.low, DENSITY_RANGE[0] * r3), min(spec.high, DENSITY_RANGE[1] * r3)


def _scale(u: float, low: float, high: float, log_scale: bool) -> float:
    if log_scale:
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    return min(max(value, low), high)  # rounding must not leave the closed range


def sample_runs(n: int, seed: int) -> list[RunSpec]:
    """``n`` hypercube runs with ids ``gen-s{seed}-n{n}-{index:05d}``."""
    rows = scale_to_ranges(latin_hypercube(n, len(SAMPLED_NAMES), seed))
    return [RunSpec(run_id_for(seed, n, i), validate_params(r)) for i, r in enumerate(rows)]


def read_csv_runs(
    path: Path, on_invalid: OnInvalid = "raise", limit: int | None = None
) -> list[RunSpec]:
    """Runs from the rows of a CSV file (see the module docstring for columns)."""
    table = _read_table(path)
    columns = _map_columns(table, path)
    name_col = next((c for c in NAME_COLUMNS if c in table.columns), None)
    runs: list[RunSpec] = []
    skipped = 0
    rows_for_id: dict[str, int] = {}
    for index, record in enumerate(table.to_dict("records")):
        if limit is not None and len(runs) >= limit:
            break
        label = _row_label(path, index, record.get(name_col) if name_col else None)
        try:
            params = _row_params(record, columns, label, on_invalid)
        except ParameterError:
            if on_invalid == "raise":
                raise
            skipped += 1
            continue
        run_id = _run_id(record.get(name_col) if name_col else None, index, params)
        if run_id in rows_for_id:
            raise InputDataError(
                f"{path}: data rows {rows_for_id[run_id] + 1} and {index + 1} both give run id "
                f"{run_id!r}; planet names must be unique after sanitising"
            )
        rows_for_id[run_id] = index
        runs.append(RunSpec(run_id, params))
    if skipped:
        log.warning("skipped %d invalid row(s) of %s (-v lists them)", skipped, path)
    if not runs:
        raise InputDataError(f"{path} has no usable rows")
    return runs


def _read_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, comment="#", skipinitialspace=True)
    except FileNotFoundError as exc:
        raise InputDataError(f"CSV file {path} does not exist") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputDataError(f"CSV file {path} is empty") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputDataError(f"CSV file {path} cannot be read as CSV: {exc}") from exc
    return table.rename(columns=lambda c: str(c).strip())


def _map_columns(table: pd.DataFrame, path: Path) -> dict[str, str]:
    """Parameter name -> CSV column, for every parameter the table has."""
    columns = parameter_columns(map(str, table.columns))
    missing = [n for n in REQUIRED_NAMES if n not in columns]
    if missing:
        accepted = "; ".join(
            f"{n} (or {', '.join(COLUMN_ALIASES[n])})" for n in missing
        )
        raise InputDataError(
            f"CSV file {path} lacks the column(s) for {', '.join(missing)}: add a column "
            f"named {accepted}. Columns found: {', '.join(map(str, table.columns))}"
        )
    return columns


def _row_label(path: Path, index: int, name: object) -> str:
    named = f" ({name})" if isinstance(name, str) and name.strip() else ""
    return f"{path} data row {index + 1}{named}"


def _row_params(
    record: dict[str, object], columns: dict[str, str], label: str, on_invalid: OnInvalid
) -> dict[str, float]:
    values: dict[str, object] = {}
    for name, column in columns.items():
        value = record[column]
        if name in OPTIONAL_NAMES and _is_missing(value):
            continue
        values[name] = value
    try:
        check_generator_range(values)
        params = validate_params(values)
        derive(params)
    except ParameterError as exc:
        fix = "fix or remove the row, or pass --on-invalid skip"
        err = ParameterError(exc.field, exc.value, exc.valid, hint=f"In {label}; {fix}")
        if on_invalid == "skip":
            log.info("skipping %s: %s=%r, expected %s", label, exc.field, exc.value,
                        exc.valid)
        raise err from None
    return params


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _run_id(name: object, index: int, params: dict[str, float]) -> str:
    """The planet's sanitised name, else ``csv-<parameter digest>-<row>``: the digest keeps
    unnamed rows of different CSV files apart, and the same row of a re-run together."""
    if isinstance(name, str):
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._-")
        if cleaned:
            return cleaned
    return f"csv-{params_digest(params)}-{index:05d}"


def params_digest(params: dict[str, float]) -> str:
    """8 hex digits of SHA-256 over the sampled parameters (``repr`` of each float; not
    ``pch4_bar``, always 0 here, so that run ids stay those of earlier versions)."""
    text = ";".join(f"{n}={float(params[n])!r}" for n in SAMPLED_NAMES if n in params)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def runs_from(
    runs: int | None, seed: int, csv: Path | None, on_invalid: OnInvalid = "raise"
) -> Sequence[RunSpec]:
    """The runs a ``generate`` call asks for: CSV rows (at most ``runs``) or a hypercube."""
    if csv is not None:
        return read_csv_runs(csv, on_invalid=on_invalid, limit=runs)
    if runs is None:
        raise ParameterError("runs", None, "an integer >= 1",
                             hint="pass --runs N, or --from-csv FILE")
    return sample_runs(runs, seed)
