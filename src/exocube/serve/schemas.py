"""Request and response bodies of the HTTP service.

The request is the parameter set of ``exocube.params`` with units and the
physical bounds in the schema. The earlier in-house system's field names are
accepted as aliases (``orbital_period``, ``insolation``, ``stellar_teff``,
``stellar_logg``, ``stellar_metallicity``, ``host_mass``).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from exocube.params import SPECS

LEGACY_ALIASES: dict[str, str] = {
    "orbital_period_days": "orbital_period",
    "insolation_earth": "insolation",
    "stellar_teff_k": "stellar_teff",
    "stellar_logg_cgs": "stellar_logg",
    "stellar_metallicity_dex": "stellar_metallicity",
    "host_mass_msun": "host_mass",
}


def _param(name: str) -> Any:
    """A body field with the parameter's units, bounds and legacy alias."""
    spec = SPECS[name]
    alias = LEGACY_ALIASES.get(name)
    desc = f"{spec.long_name} [{spec.units}], in [{spec.low:g}, {spec.high:g}]"
    if alias:
        desc += f"; also accepted as `{alias}`"
    kwargs: dict[str, Any] = {}
    if spec.default is not None:
        desc += f"; default {spec.default:g}"
        kwargs["default"] = None
    if alias:
        kwargs["validation_alias"] = AliasChoices(name, alias)
    return Field(ge=spec.low, le=spec.high, allow_inf_nan=False, description=desc,
                 json_schema_extra={"units": spec.units}, **kwargs)


class PlanetParams(BaseModel):
    """One planet and its star. Optional atmosphere fields default to Earth-like values."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.25,
        "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.44,
        "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0}]})

    radius_earth: float = _param("radius_earth")
    mass_earth: float = _param("mass_earth")
    orbital_period_days: float = _param("orbital_period_days")
    insolation_earth: float = _param("insolation_earth")
    stellar_teff_k: float = _param("stellar_teff_k")
    stellar_logg_cgs: float = _param("stellar_logg_cgs")
    stellar_metallicity_dex: float = _param("stellar_metallicity_dex")
    host_mass_msun: float = _param("host_mass_msun")
    surface_pressure_bar: float | None = _param("surface_pressure_bar")
    pco2_bar: float | None = _param("pco2_bar")
    rotation_period_days: float | None = _param("rotation_period_days")
    allow_extrapolation: bool = Field(
        default=False, description="Answer even when the request lies far outside the "
        "training runs' parameter hull (the answer is flagged out_of_domain).")

    def parameters(self) -> dict[str, float]:
        """The physical parameters given (absent optional fields left out)."""
        return self.model_dump(exclude={"allow_extrapolation"}, exclude_none=True)


class ModelRef(BaseModel):
    """The model that answered, and how it was chosen (promoted, newest, a selection)."""

    id: int
    name: str
    selected_by: str


class ScalarResponse(BaseModel):
    """JSON answer of ``/predict/scalar`` (and the metadata of every JSON answer)."""

    mode: str
    model: ModelRef
    dataset_version: str | None
    out_of_domain: bool = Field(description="True when the request lies outside the training "
                                "runs' parameter hull.")
    hull_distance: float = Field(description="Distance to the training hull in encoded units "
                                 "(each parameter mapped to [-1, 1] over its valid range).")
    tidally_locked: bool
    params: dict[str, float]
    defaulted: list[str]
    scalars: dict[str, float] = Field(description="Scalar diagnostics (see units).")
    units: dict[str, str]


class DatacubeResponse(ScalarResponse):
    """JSON answer of ``/predict/datacube`` and ``/predict/joint``: coordinates plus nested
    arrays, null below the predicted surface. ``temperature_field`` repeats ``ta``."""

    coords: dict[str, list[float]]
    dims: dict[str, list[str]]
    fields: dict[str, list[list[list[float | None]]] | list[list[float | None]]]


class ModeStatus(BaseModel):
    available: bool
    answering: bool
    model_id: int | None
    model_name: str | None
    dataset_version: str | None
    reason: str | None
    selected_by: str | None = None


class ReadyResponse(BaseModel):
    ready: bool
    modes: dict[str, ModeStatus]


class HealthResponse(BaseModel):
    status: str


class ModelPublic(BaseModel):
    """A loaded model as anyone may see it: no server file paths."""

    id: int
    name: str
    recorded_mode: str
    serves: list[str]
    selected_by: dict[str, str] = Field(description="For each mode served: how the model "
                                        "was chosen (promoted, newest, a selection).")
    dataset_version: str | None
    created_at: str
    metrics: dict[str, float]


class ModelAdmin(ModelPublic):
    """A loaded model with its checkpoint file and cube store (admin key only)."""

    checkpoint: str
    store: str | None


class ModelsResponse(BaseModel):
    models: list[ModelPublic]
    modes: dict[str, ModeStatus]


class ModelsAdminResponse(BaseModel):
    models: list[ModelAdmin]
    modes: dict[str, ModeStatus]
