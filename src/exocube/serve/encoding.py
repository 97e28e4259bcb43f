"""Response bodies by content negotiation: JSON, NetCDF and NumPy binary.

JSON carries the coordinates and nested arrays (NaN below the surface as
null), written by orjson straight from NumPy arrays: each float32 value is
written as the shortest decimal of its float64 widening, the digits
``json.dumps(array.tolist())`` gave, so every client decodes the same numbers
as before, 100 times faster. NetCDF is the CF dataset of :meth:`Prediction.to_dataset`. NumPy
binary (``application/x-npy``: an ``.npy`` file; ``application/octet-stream``:
the raw C-order bytes) stacks the chosen variables into one array, described
by the ``X-Array-*`` headers. Every format carries the model and domain facts
in ``X-*`` headers as well, and none carries a server file path.

An ensemble's answer adds its uncertainty without changing any other key: JSON
``fields_std`` and ``scalars_std`` (the members' sample std, same shapes and units
as ``fields`` / ``scalars``) and ``uncertainty`` (method, member count); NetCDF
``<var>_std`` variables; NumPy ``<var>_std`` names in ``variables``; headers
``X-Scalars-Std``, ``X-Ensemble-Members`` and ``X-Uncertainty-Method``. A network with
a std head answers the same way (its own std, ``X-Ensemble-Members: 1``, method ``std
head``); any other single model's answer has none.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from exocube.errors import ParameterError
from exocube.grid import CF_META
from exocube.ml import SCALAR_NAMES
from exocube.surrogate import FIELD_DIMS_2D, FIELD_DIMS_3D, SCALAR_META, Prediction

JSON = "application/json"
NETCDF = "application/x-netcdf"
NPY = "application/x-npy"
RAW = "application/octet-stream"
MEDIA_TYPES: tuple[str, ...] = (JSON, NETCDF, NPY, RAW)
_NETCDF_LOCK = threading.Lock()  # HDF5 is not thread-safe; encodings run in worker threads


def negotiate(accept: str | None) -> str | None:
    """The first supported media type in an Accept header (by q-value), or None."""
    if not accept or not accept.strip():
        return JSON
    offers: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        offers.append((-q, i, pieces[0].lower()))
    for negq, _, media in sorted(offers):
        if negq == 0:
            continue
        if media in MEDIA_TYPES:
            return media
        if media in ("*/*", "application/*"):
            return JSON
    return None


@dataclass(frozen=True)
class Encoded:
    body: bytes
    media_type: str
    headers: dict[str, str]


def headers_for(p: Prediction) -> dict[str, str]:
    h = {"X-Model-Id": str(p.model.id), "X-Model-Name": p.model.name,
         "X-Model-Selected-By": p.model.selected_by,
         "X-Dataset-Version": p.dataset_version or "",
         "X-Out-Of-Domain": "true" if p.out_of_domain else "false",
         "X-Hull-Distance": repr(p.hull_distance),
         "X-Tidally-Locked": "true" if p.tidally_locked else "false"}
    if p.scalars:
        h["X-Scalars"] = json.dumps(p.scalars)
    if p.has_uncertainty:
        h["X-Ensemble-Members"] = str(p.n_members)
        h["X-Uncertainty-Method"] = p.uncertainty_method
        if p.scalars_std:
            h["X-Scalars-Std"] = json.dumps(p.scalars_std)
    return h


def encode(p: Prediction, media: str, variables: Sequence[str] | None) -> Encoded:
    """The body and headers of ``p`` in ``media``."""
    if media == JSON:
        return Encoded(to_json(p), JSON, headers_for(p))
    if media == NETCDF:
        return Encoded(to_netcdf(p, variables), NETCDF, headers_for(p))
    arr, names, dims = stacked(p, variables)
    headers = {**headers_for(p), "X-Array-Shape": ",".join(map(str, arr.shape)),
               "X-Array-Dtype": arr.dtype.str, "X-Array-Dims": ",".join(dims),
               "X-Array-Variables": ",".join(names)}
    if media == NPY:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr, allow_pickle=False)
        return Encoded(buf.getvalue(), NPY, headers)
    return Encoded(arr.tobytes(order="C"), RAW, headers)


def _f64(a: np.ndarray) -> np.ndarray:
    """A C-contiguous float64 copy: orjson writes its values with the digits of
    ``json.dumps(a.tolist())`` (and NaN as null)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def to_json(p: Prediction) -> bytes:
    """Metadata, scalars, coordinates and nested field arrays as one JSON document."""
    doc: dict[str, Any] = p.metadata()
    doc["scalars"] = p.scalars
    if p.scalars_std:
        doc["scalars_std"] = p.scalars_std
    units = {n: SCALAR_META[n] for n in p.scalars}
    doc["units"] = units
    if not p.fields:
        return orjson.dumps(doc)
    units.update({n: CF_META[n][1] for n in p.fields})
    doc["coords"] = {k: _f64(v) for k, v in p.coords.items()}
    doc["dims"] = {n: list(FIELD_DIMS_3D if a.ndim == 3 else FIELD_DIMS_2D)
                   for n, a in p.fields.items()}
    fields = {n: _f64(a) for n, a in p.fields.items()}
    if "ta" in p.fields:
        doc["dims"]["temperature_field"] = doc["dims"]["ta"]
        fields["temperature_field"] = fields["ta"]
    doc["fields"] = fields
    if p.fields_std:
        doc["fields_std"] = {n: _f64(a) for n, a in p.fields_std.items()}
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def to_netcdf(p: Prediction, variables: Sequence[str] | None) -> bytes:
    """The CF dataset, without the checkpoint's server path."""
    ds = p.to_dataset()
    del ds.attrs["model_checkpoint"]
    if variables:
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise ParameterError("variables", ",".join(missing),
                                 f"names among {', '.join(map(str, ds.data_vars))}")
        ds = ds[list(variables)]
    with _NETCDF_LOCK:
        return bytes(ds.to_netcdf(engine="netcdf4"))


def stacked(p: Prediction, variables: Sequence[str] | None
            ) -> tuple[np.ndarray, list[str], list[str]]:
    """One array of the chosen variables: 3-D fields by default, scalars in scalar mode;
    an ensemble's ``<var>_std`` may be chosen too."""
    if not p.fields:
        scalars = {**p.scalars, **{n + "_std": v for n, v in p.scalars_std.items()}}
        names = list(variables or SCALAR_NAMES)
        unknown = [v for v in names if v not in scalars]
        if unknown:
            raise ParameterError("variables", ",".join(unknown),
                                 f"names among {', '.join(scalars)}")
        return np.array([scalars[n] for n in names], np.float64), names, ["variable"]
    arrays = {**p.fields, **{n + "_std": a for n, a in p.fields_std.items()}}
    names = list(variables or [n for n, a in p.fields.items() if a.ndim == 3])
    unknown = [v for v in names if v not in arrays]
    if unknown:
        raise ParameterError("variables", ",".join(unknown),
                             f"field names among {', '.join(arrays)}")
    ndims = {arrays[n].ndim for n in names}
    if len(ndims) != 1:
        raise ParameterError("variables", ",".join(names),
                             "fields of one kind: 3-D (ta ua va hus zg) or 2-D (ps ts)")
    dims = ["variable", *(FIELD_DIMS_3D if ndims == {3} else FIELD_DIMS_2D)]
    return np.stack([arrays[n] for n in names]), names, dims
