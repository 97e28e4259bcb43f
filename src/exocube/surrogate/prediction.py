"""The answer to one prediction request, and its NetCDF/xarray form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from exocube.grid import CF_META
from exocube.ml import DEEP_ENSEMBLE, SCALAR_NAMES, SCALAR_UNITS, STD_HEAD
from exocube.surrogate.loading import ModelInfo

SCALAR_META: dict[str, str] = dict(zip(SCALAR_NAMES, SCALAR_UNITS, strict=True))
FIELD_DIMS_3D = ("plev", "lat", "lon")
FIELD_DIMS_2D = ("lat", "lon")
STD_LONG_NAME = {DEEP_ENSEMBLE: "standard deviation of the ensemble members (ddof=1)",
                 STD_HEAD: "standard deviation predicted by the network"}


@dataclass(frozen=True)
class Prediction:
    """One planet's prediction, with the model and domain facts a caller must see.

    ``fields`` holds float32 arrays: 3-D ``(plev, lat, lon)`` with NaN below the
    predicted surface, 2-D ``(lat, lon)``; empty in mode ``scalar``. ``scalars``
    is empty in mode ``datacube``. An ensemble's prediction is its members' mean, with
    their sample standard deviation (``ddof=1``) in ``fields_std`` / ``scalars_std``
    (same keys and shapes; NaN where any member puts a level below its surface), times
    the ensemble's ``std_scale`` when it has one; a network with a std head
    (``uncertainty_method`` STD_HEAD) gives its own predicted standard deviation there,
    times the ``std_scale`` of its one-member manifest; any other single model's are empty.
    """

    mode: str
    params: dict[str, float]
    defaulted: tuple[str, ...]
    tidally_locked: bool
    model: ModelInfo
    hull_distance: float
    out_of_domain: bool
    coords: dict[str, NDArray[np.float64]]
    fields: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    fields_std: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    scalars_std: dict[str, float] = field(default_factory=dict)
    n_members: int = 1
    std_scale: dict[str, float] = field(default_factory=dict)
    uncertainty_method: str = DEEP_ENSEMBLE

    @property
    def has_uncertainty(self) -> bool:
        return bool(self.fields_std or self.scalars_std)

    def uncertainty(self) -> dict[str, Any] | None:
        """How the ``*_std`` values were made (None without them)."""
        if not self.has_uncertainty:
            return None
        std = ("the network's own predicted standard deviation (Gaussian head)"
               if self.uncertainty_method == STD_HEAD
               else "sample standard deviation of the members (ddof=1)")
        if self.std_scale:
            std += ", times std_scale (fitted on the validation runs)"
        return {"method": self.uncertainty_method, "n_members": self.n_members, "std": std,
                "members": list(self.model.members), "std_scale": dict(self.std_scale)}

    @property
    def dataset_version(self) -> str | None:
        return self.model.dataset_version

    def metadata(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-ready; no server file paths (HTTP clients get
        this): the model by id and name, and how it was chosen."""
        return {
            "mode": self.mode,
            "model": {"id": self.model.id, "name": self.model.name,
                      "selected_by": self.model.selected_by},
            "dataset_version": self.dataset_version,
            "out_of_domain": self.out_of_domain,
            "hull_distance": self.hull_distance,
            "tidally_locked": self.tidally_locked,
            "params": dict(self.params),
            "defaulted": list(self.defaulted),
            **({"uncertainty": self.uncertainty()} if self.has_uncertainty else {}),
        }

    def to_dataset(self) -> xr.Dataset:
        """A CF-style dataset of the fields and scalars, provenance in attributes."""
        data: dict[str, Any] = {}
        for name, arr in self.fields.items():
            dims = FIELD_DIMS_3D if arr.ndim == 3 else FIELD_DIMS_2D
            std, units = CF_META[name]
            data[name] = (dims, arr, {"standard_name": std, "units": units})
        long_name = STD_LONG_NAME[self.uncertainty_method]
        for name, arr in self.fields_std.items():
            dims = FIELD_DIMS_3D if arr.ndim == 3 else FIELD_DIMS_2D
            data[name + "_std"] = (dims, arr, {"units": CF_META[name][1],
                                               "long_name": f"{name} {long_name}"})
        for name, value in self.scalars.items():
            data[name] = ((), np.float32(value), {"units": SCALAR_META[name]})
        for name, value in self.scalars_std.items():
            data[name + "_std"] = ((), np.float32(value), {"units": SCALAR_META[name],
                                                           "long_name": f"{name} "
                                                           f"{long_name}"})
        coords = {"plev": ("plev", self.coords["plev"], {"units": "Pa",
                                                         "standard_name": "air_pressure"}),
                  "lat": ("lat", self.coords["lat"], {"units": "degrees_north",
                                                      "standard_name": "latitude"}),
                  "lon": ("lon", self.coords["lon"], {"units": "degrees_east",
                                                      "standard_name": "longitude"})}
        attrs: dict[str, Any] = {
            "Conventions": "CF-1.8", "source": "exocube surrogate", "mode": self.mode,
            "model_id": self.model.id, "model_name": self.model.name,
            "model_checkpoint": self.model.checkpoint,
            "model_selected_by": self.model.selected_by,
            "dataset_version": self.dataset_version or "",
            "out_of_domain": int(self.out_of_domain), "hull_distance": self.hull_distance,
            "tidally_locked": int(self.tidally_locked),
            "defaulted_params": ",".join(self.defaulted),
        }
        if self.has_uncertainty:
            attrs.update(uncertainty_method=self.uncertainty_method,
                         ensemble_members=self.n_members,
                         ensemble_member_ids=",".join(map(str, self.model.members)))
        attrs.update({k: float(v) for k, v in self.params.items()})
        return xr.Dataset(data, coords=coords, attrs=attrs)
