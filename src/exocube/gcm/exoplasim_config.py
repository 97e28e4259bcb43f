"""A design CSV row and how it maps onto ExoPlaSim's own configuration.

No ExoPlaSim import here: the driver passes :meth:`ExoPlaSimRunConfig.model_kwargs`
to ``exoplasim.Model(...)`` and :meth:`ExoPlaSimRunConfig.configure_kwargs` to
``Model.configure(...)`` unchanged, so the namelists stay ExoPlaSim's business.

A design row has a ``run_id`` column, the exocube planet parameters
(:data:`exocube.params.ALL_NAMES`, checked against the physical validity bounds,
including ``pco2_bar + pch4_bar <= surface_pressure_bar``) and these optional
ExoPlaSim columns:

- ``tidally_locked`` (0/1): synchronous rotation with the orbital period; default
  1 when ``rotation_period_days`` is absent or equals ``orbital_period_days``;
- ``surface``: ``ocean`` (aquaplanet, default) or ``land`` (desert planet);
- ``obliquity_deg``: default 0 for a locked planet, 23.441 otherwise;
- ``timestep_minutes``: default 30 for a locked planet, 45 otherwise (ExoPlaSim's
  own defaults for ``TLmodel`` and ``Model``).

The atmosphere is N2 + CO2 (+ CH4): ``pN2 = surface_pressure_bar - pco2_bar - pch4_bar``
(0 for a pure CO2/CH4 atmosphere). ``pco2_bar`` becomes ExoPlaSim's ``pCO2`` (its CO2
concentration, ``pCO2 / pressure``); ``pco2_bar = 0`` sets that concentration to 0
(without a CO2 partial pressure ExoPlaSim would assume 300 ppmv). ``pch4_bar`` (exocube's
optional CH4 partial pressure, default 0) becomes ExoPlaSim's ``pCH4``: ExoPlaSim 3.4.2
uses it for the mean molecular weight, gas constant and surface pressure only, not in
its radiation.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from exocube.errors import InputDataError, ParameterError
from exocube.params import ALL_NAMES, validate_params
from exocube.physics import S_EARTH, surface_gravity
from exocube.planet import is_synchronous

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SURFACES = ("ocean", "land")
EXTRA_COLUMNS = ("tidally_locked", "surface", "obliquity_deg", "timestep_minutes")
RESOLUTIONS = ("T21", "T42", "T63", "T85", "T106", "T127", "T170")
EARTH_OBLIQUITY = 23.441
MINUTES_PER_DAY = 1440
LOCKED_YEAR_DAYS = 360.0  # no seasons: ExoPlaSim's default year


@dataclass(frozen=True)
class RunLength:
    """How long a run is: ``years`` restart segments of ``year_days`` days (default: the
    planet's orbital year in whole days for a rotating planet, as ExoPlaSim's calendar
    counts it, and 360 days for a tidally locked one), output every ``write_days`` days,
    post-processed into ``times`` time steps per segment. With
    ``min_years``, a run stops early once it has run that many years and is equilibrated
    (``years`` is then the cap)."""

    years: int = 10
    year_days: float | None = None
    write_days: float = 5.0
    times: int = 12
    min_years: int | None = None

    def __post_init__(self) -> None:
        for name in ("years", "times"):
            if getattr(self, name) < 1:
                raise InputDataError(f"{name}={getattr(self, name)} is invalid: expected >= 1")
        if self.min_years is not None and not (2 <= self.min_years <= self.years):
            raise InputDataError(f"min_years={self.min_years} is invalid: expected 2 <= "
                                 f"min_years <= years ({self.years})")
        if self.write_days <= 0 or (self.year_days is not None
                                    and self.write_days > self.year_days):
            raise InputDataError(
                f"write_days={self.write_days} is invalid: expected 0 < write_days <= "
                f"year_days ({self.year_days})")

    def steps(self, days: float, timestep_minutes: float, what: str) -> int:
        """``days`` in model time steps; refuses a length that is not a whole number of steps."""
        steps = days * MINUTES_PER_DAY / timestep_minutes
        if not math.isclose(steps, round(steps), abs_tol=1e-9) or round(steps) < 1:
            raise InputDataError(
                f"{what}={days} days is not a whole number of {timestep_minutes}-minute time "
                "steps; choose a length that is")
        return round(steps)


DEFAULT_LENGTH = RunLength()


@dataclass(frozen=True)
class DesignRow:
    """One validated design row: run id, exocube parameters and ExoPlaSim extras.

    ``params`` holds every parameter but ``pch4_bar``, which is its own field (as in run
    directories made before it was a parameter, whose configuration digest it keeps)."""

    run_id: str
    params: dict[str, float]
    tidally_locked: bool
    surface: str = "ocean"
    pch4_bar: float = 0.0
    obliquity_deg: float = 0.0
    timestep_minutes: float = 45.0

    @property
    def planet_params(self) -> dict[str, float]:
        """Every exocube parameter of the planet (:data:`exocube.params.ALL_NAMES`)."""
        return {**self.params, "pch4_bar": self.pch4_bar}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DesignRow:
        return cls(**{**doc, "params": dict(doc["params"])})


@dataclass(frozen=True)
class ExoPlaSimRunConfig:
    """Everything a run needs: its design row, length and ExoPlaSim build options."""

    row: DesignRow
    length: RunLength
    resolution: str = "T21"
    layers: int = 10
    ncpus: int = 1
    precision: int = 8
    postprocess_variables: tuple[str, ...] = field(default=(
        "ta", "ua", "va", "hus", "zg", "ps", "ts", "tas", "ntr", "hfns", "rst", "rlut",
        "pr", "clt", "alb"))

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise InputDataError(
                f"resolution={self.resolution!r} is invalid: ExoPlaSim supports {RESOLUTIONS}")
        if self.ncpus < 1 or self.layers < 2 or self.precision not in (4, 8):
            raise InputDataError(
                f"ncpus={self.ncpus}, layers={self.layers}, precision={self.precision}: expected "
                "ncpus >= 1, layers >= 2 and precision 4 or 8")

    @property
    def year_days(self) -> float:
        """Days in one model year (restart segment) of this run."""
        if self.length.year_days is not None:
            return self.length.year_days
        if self.row.tidally_locked:
            return LOCKED_YEAR_DAYS
        return float(max(1, int(self.row.params["orbital_period_days"])))

    def model_kwargs(self, workdir: Path, inityear: int) -> dict[str, Any]:
        """Keyword arguments of ``exoplasim.Model``."""
        return {"workdir": str(workdir), "modelname": self.row.run_id,
                "resolution": self.resolution, "layers": self.layers, "ncpus": self.ncpus,
                "precision": self.precision, "inityear": inityear, "outputtype": ".nc",
                "crashtolerant": False}

    def configure_kwargs(self, restartfile: Path | None) -> dict[str, Any]:
        """Keyword arguments of ``Model.configure`` for this planet."""
        row, p = self.row, self.row.params
        if self.length.write_days > self.year_days:
            raise InputDataError(
                f"run {row.run_id}: write_days={self.length.write_days} is longer than its "
                f"model year of {self.year_days} days, so ExoPlaSim would write no output; "
                "use a shorter --write-days or a longer --year-days")
        pco2 = p["pco2_bar"]
        kwargs: dict[str, Any] = {
            "flux": p["insolation_earth"] * S_EARTH,
            "startemp": p["stellar_teff_k"],
            "radius": p["radius_earth"],
            "gravity": float(surface_gravity(p["mass_earth"], p["radius_earth"])),
            "pressure": p["surface_pressure_bar"],
            "pN2": max(p["surface_pressure_bar"] - pco2 - row.pch4_bar, 0.0),
            "year": p["orbital_period_days"],
            "eccentricity": 0.0,
            "obliquity": row.obliquity_deg,
            "fixedorbit": True,
            "ozone": False,
            "timestep": row.timestep_minutes,
            "runsteps": self.length.steps(self.year_days, row.timestep_minutes, "year_days"),
            "snapshots": 0,
            "restartfile": str(restartfile) if restartfile else None,
            "otherargs": {"NSTPW@plasim_namelist": str(self.length.steps(
                self.length.write_days, row.timestep_minutes, "write_days"))},
        }
        if pco2 > 0:
            kwargs["pCO2"] = pco2
        else:  # ExoPlaSim would use its default 300 ppmv without a CO2 partial pressure
            kwargs["otherargs"]["CO2@radmod_namelist"] = "0.0"
        if row.pch4_bar > 0:
            kwargs["pCH4"] = row.pch4_bar
        kwargs["aquaplanet" if row.surface == "ocean" else "desertplanet"] = True
        if row.tidally_locked:
            kwargs.update(synchronous=True, rotationperiod=p["orbital_period_days"],
                          physicsfilter="gp|exp|sp")
        else:
            kwargs["rotationperiod"] = p["rotation_period_days"]
        return kwargs

    def postprocessor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Model.cfgpostprocessor``."""
        return {"extension": ".nc", "variables": list(self.postprocess_variables),
                "times": self.length.times}

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["postprocess_variables"] = list(self.postprocess_variables)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ExoPlaSimRunConfig:
        return cls(row=DesignRow.from_dict(doc["row"]), length=RunLength(**doc["length"]),
                   resolution=doc["resolution"], layers=doc["layers"], ncpus=doc["ncpus"],
                   precision=doc["precision"],
                   postprocess_variables=tuple(doc["postprocess_variables"]))

    def digest(self) -> str:
        """SHA-256 of the configuration a run directory was made from; the year cap and
        ``min_years`` are left out, so that an ensemble can be extended."""
        doc = self.to_dict()
        doc["length"] = {k: v for k, v in doc["length"].items()
                         if k not in ("years", "min_years")}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def read_design(path: Path) -> list[DesignRow]:
    """Every row of a design CSV, validated; the first bad value is an error naming it."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputDataError(f"design CSV {path}: cannot be read ({exc})") from exc
    unknown = [c for c in table.columns if c not in (*ALL_NAMES, *EXTRA_COLUMNS, "run_id")]
    if "run_id" not in table.columns or unknown:
        raise InputDataError(
            f"design CSV {path}: expected a run_id column and only the columns "
            f"{[*ALL_NAMES, *EXTRA_COLUMNS]}; found {list(table.columns)} (unknown: {unknown})")
    if table.empty:
        raise InputDataError(f"design CSV {path} has no rows")
    rows = [design_row(dict(r), f"{path} row {i + 2}") for i, r in table.iterrows()]
    seen: set[str] = set()
    for row in rows:
        if row.run_id in seen:
            raise InputDataError(f"design CSV {path}: run_id {row.run_id!r} appears twice")
        seen.add(row.run_id)
    return rows


def design_row(raw: Mapping[str, str], where: str) -> DesignRow:
    """Validate one row given as strings (empty string = absent)."""
    values = {k: v.strip() for k, v in raw.items() if isinstance(v, str) and v.strip() != ""}
    run_id = values.pop("run_id", "")
    if not RUN_ID.match(run_id):
        raise InputDataError(
            f"{where}: run_id={run_id!r} is invalid: expected 1-100 characters from "
            "A-Z a-z 0-9 _ . - starting with a letter or digit")
    extras = {k: values.pop(k) for k in EXTRA_COLUMNS if k in values}
    try:
        params = validate_params(values)
    except ParameterError as exc:
        raise InputDataError(f"{where} (run {run_id!r}): {exc}") from None
    pch4 = params.pop("pch4_bar")
    return _with_extras(run_id, params, pch4, extras, f"{where} (run {run_id!r})",
                        rotation_given="rotation_period_days" in values)


def _with_extras(run_id: str, params: dict[str, float], pch4: float, extras: dict[str, str],
                 where: str, rotation_given: bool) -> DesignRow:
    locked_default = (not rotation_given) or is_synchronous(
        params["rotation_period_days"], params["orbital_period_days"])
    locked = _flag(extras.get("tidally_locked"), locked_default, where)
    if locked:
        params["rotation_period_days"] = params["orbital_period_days"]
    surface = extras.get("surface", "ocean")
    if surface not in SURFACES:
        raise InputDataError(f"{where}: surface={surface!r} is invalid: expected one of "
                             f"{SURFACES}")
    return DesignRow(
        run_id=run_id, params=params, tidally_locked=locked, surface=surface, pch4_bar=pch4,
        obliquity_deg=_number(extras, "obliquity_deg", 0.0 if locked else EARTH_OBLIQUITY,
                              0.0, 180.0, where),
        timestep_minutes=_number(extras, "timestep_minutes", 30.0 if locked else 45.0,
                                 1.0, 720.0, where),
    )


def _flag(text: str | None, default: bool, where: str) -> bool:
    if text is None:
        return default
    if text not in ("0", "1"):
        raise InputDataError(f"{where}: tidally_locked={text!r} is invalid: expected 0 or 1")
    return text == "1"


def _number(extras: Mapping[str, str], name: str, default: float, low: float, high: float,
            where: str) -> float:
    if name not in extras:
        return default
    try:
        value = float(extras[name])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise InputDataError(f"{where}: {name}={extras[name]!r} is invalid: expected a number "
                             f"in [{low}, {high}]")
    return value
