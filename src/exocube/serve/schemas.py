"""Request and response bodies of the HTTP service.

The request is the parameter set of ``exocube.params`` with units and the
physical validity bounds in the schema (docs/parameters.md); the partial-pressure
rules between fields are checked after the schema, also with a 422. Validation is
strict: numbers must be JSON numbers (not strings, not booleans),
``allow_extrapolation`` a JSON boolean.
The earlier in-house system's field names are accepted as aliases
(``orbital_period``, ``insolation``, ``stellar_teff``, ``stellar_logg``,
``stellar_metallicity``, ``host_mass``: :data:`exocube.params.LEGACY_NAMES`); a
parameter given under both names is refused.

The star fields that only a model on the v1 inputs reads (:data:`MODEL_ONLY_FIELDS`:
stellar log g, metallicity, host mass) are optional here; a model that uses them
refuses a request without them with a 422 naming the field, and the served OpenAPI
schema lists them as required on the routes of such a model (``exocube.serve.openapi``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from exocube.errors import ParameterError
from exocube.params import LEGACY_NAMES, REQUIRED_NAMES, SPECS
from exocube.planet import DRIVER_FIELDS

#: Rules between fields, which JSON Schema cannot state: told in the field's description.
CROSS_FIELD_RULES: dict[str, str] = {
    "pco2_bar": "at most surface_pressure_bar (1 bar when absent): a partial pressure above "
                "the surface pressure is refused with a 422",
    "pch4_bar": "pco2_bar + pch4_bar at most surface_pressure_bar, else a 422"}


#: Required parameters that not every model reads: optional in the body, required by the
#: routes of a model that uses them.
MODEL_ONLY_FIELDS: tuple[str, ...] = tuple(n for n in REQUIRED_NAMES if n not in DRIVER_FIELDS)


def _param(name: str) -> Any:
    """A body field with the parameter's units, bounds and legacy alias."""
    spec = SPECS[name]
    alias = LEGACY_NAMES.get(name)
    desc = f"{spec.long_name} [{spec.units}], in [{spec.low:g}, {spec.high:g}]"
    if name in CROSS_FIELD_RULES:
        desc += f"; {CROSS_FIELD_RULES[name]}"
    if alias:
        desc += f"; also accepted as `{alias}`"
    kwargs: dict[str, Any] = {}
    if spec.default is not None:
        desc += f"; default {spec.default:g}"
        kwargs["default"] = None
    elif name in MODEL_ONLY_FIELDS:
        desc += ("; needed only by a model on the v1 inputs, which refuses a request "
                 "without it (the route's schema then lists it as required)")
        kwargs["default"] = None
    if alias:
        kwargs["validation_alias"] = AliasChoices(name, alias)
    return Field(ge=spec.low, le=spec.high, allow_inf_nan=False, description=desc,
                 json_schema_extra={"units": spec.units}, **kwargs)


#: The Earth and the Sun as a request (the optional fields take their Earth-like defaults).
EARTH: dict[str, float] = {
    "radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.25,
    "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.44,
    "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0}


class PlanetParams(BaseModel):
    """One planet and its star. Optional atmosphere fields default to Earth-like values;
    the star-only fields are needed only by models that read them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    radius_earth: float = _param("radius_earth")
    mass_earth: float = _param("mass_earth")
    orbital_period_days: float = _param("orbital_period_days")
    insolation_earth: float = _param("insolation_earth")
    stellar_teff_k: float = _param("stellar_teff_k")
    stellar_logg_cgs: float | None = _param("stellar_logg_cgs")
    stellar_metallicity_dex: float | None = _param("stellar_metallicity_dex")
    host_mass_msun: float | None = _param("host_mass_msun")
    surface_pressure_bar: float | None = _param("surface_pressure_bar")
    pco2_bar: float | None = _param("pco2_bar")
    rotation_period_days: float | None = _param("rotation_period_days")
    pch4_bar: float | None = _param("pch4_bar")
    allow_extrapolation: bool = Field(
        default=False, description="Answer even when the request lies far outside the "
        "training runs' parameter hull (the answer is flagged out_of_domain).")

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_parameter(cls, data: Any) -> Any:
        """Refuse a parameter given under its name and its earlier-system alias."""
        if isinstance(data, Mapping):
            both = [[n, a] for n, a in LEGACY_NAMES.items() if n in data and a in data]
            if both:
                raise PydanticCustomError(
                    "alias_conflict", "given under both {names}; send each parameter once",
                    {"names": ", ".join(f"{n} and {a}" for n, a in both), "conflicts": both})
        return data

    def parameters(self) -> dict[str, float]:
        """The physical parameters given (absent optional fields left out)."""
        return self.model_dump(exclude={"allow_extrapolation"}, exclude_none=True)


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: The ``variables`` query value: names separated by commas (spaces around them allowed),
#: none empty and none twice. The OpenAPI schema carries it; :func:`parse_variables`
#: applies it.
VARIABLES_PATTERN = (rf"^(?!.*(?:^|,) *({_NAME}) *,(?:.*,)? *\1 *(?:,|$)) *{_NAME} *"
                     rf"(?:, *{_NAME} *)*$")
_VARIABLES = re.compile(VARIABLES_PATTERN)


def parse_variables(text: str | None) -> tuple[str, ...] | None:
    """The ``variables`` query value as names; None when absent. An empty name, a name
    that is not an identifier or a name given twice (which would repeat its array in the
    answer) raises ParameterError."""
    if text is None:
        return None
    names = tuple(v.strip(" ") for v in text.split(","))
    if _VARIABLES.match(text):
        return names
    repeated = sorted({n for n in names if names.count(n) > 1 and n})
    hint = (f"repeated: {', '.join(repeated)}" if repeated else "a name is letters, digits "
            "and _; leave the parameter out for the default variables")
    raise ParameterError("variables", text, "variable names separated by commas, each once",
                         hint=hint)


class ErrorDetail(BaseModel):
    """One problem with a request: the field, the value received and what is valid."""

    field: str = Field(description="The parameter (its canonical name for an alias), "
                       "`body` for the body as a whole, `variables` for the query.")
    value: Any = Field(description="The value received: JSON-compliant, so NaN, Infinity and "
                       "numbers beyond a double are given as their text (\"NaN\", "
                       "\"1e309\"); long texts and containers are shortened.")
    bound: str | None = Field(description="What is valid, e.g. `in [0.5, 2.5] R_earth`.")
    msg: str = Field(description="A sentence naming the field, the value and the bound.")
    loc: list[str] = Field(description="Where the value is: `body`, `query` and the name.")
    type: str | None = Field(description="The kind of problem, e.g. `less_than_equal`, "
                             "`float_type`, `finite_number`, `alias_conflict`, "
                             "`parameter_error`.")


class ValidationErrorResponse(BaseModel):
    """A 422: every problem found with the request."""

    detail: list[ErrorDetail]


class MessageResponse(BaseModel):
    """An error answer with one sentence saying what is wrong and what to do."""

    detail: str


class ModelRef(BaseModel):
    """The model that answered, and how it was chosen (promoted, newest, a selection)."""

    id: int
    name: str
    selected_by: str


class Uncertainty(BaseModel):
    """How an ensemble's standard deviations were made."""

    method: str
    n_members: int
    std: str
    members: list[int] = Field(description="The catalogue ids of the members.")
    std_scale: dict[str, float] = Field(description="Per variable, the factor applied to "
                                        "the members' std (fitted on the validation runs); "
                                        "empty when uncalibrated.")


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
    scalars_std: dict[str, float] | None = Field(
        default=None, description="An ensemble's uncertainty of each scalar: the members' "
        "sample standard deviation (ddof=1), in the scalar's units. Absent for a single "
        "model.")
    uncertainty: Uncertainty | None = Field(
        default=None, description="How the *_std values were made; absent for a single model.")


class DatacubeResponse(ScalarResponse):
    """JSON answer of ``/predict/datacube`` and ``/predict/joint``: coordinates plus nested
    arrays, null below the predicted surface. ``temperature_field`` repeats ``ta``."""

    coords: dict[str, list[float]]
    dims: dict[str, list[str]]
    fields: dict[str, list[list[list[float | None]]] | list[list[float | None]]]
    fields_std: dict[str, list[list[list[float | None]]] | list[list[float | None]]] | None = (
        Field(default=None, description="An ensemble's uncertainty of each field: the "
              "members' sample standard deviation (ddof=1), in the field's units, null where "
              "any member puts the level below its surface. Absent for a single model."))


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
