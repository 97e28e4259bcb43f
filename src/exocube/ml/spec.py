"""What a checkpoint remembers about its data: :class:`DataSpec`.

The spec holds the grid the model was trained on, the learned variables and
their normalisation statistics, the run split and the parameter table (the
training runs' parameters under the names and scales the model encodes). The
datamodule builds it from a store; the model saves :meth:`DataSpec.to_dict`
in its checkpoint and reads it back with :meth:`DataSpec.from_dict`, which
also reads the plain dictionary of checkpoints written before the spec had a
version (exocube 296232c and earlier, :data:`LEGACY_PARAMS`).

Parameters are encoded with the scales recorded in the spec, not with today's
:mod:`exocube.params`, so a model keeps its input vector when parameters are
added or their ranges change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from exocube.errors import ConfigError, ParameterError
from exocube.grid import Grid
from exocube.params import MODEL_INPUT_SPECS_V1, MODEL_INPUT_SPECS_V2, MODEL_INPUT_V1

#: Version of the dictionary written by :meth:`DataSpec.to_dict`; dictionaries without a
#: ``spec_version`` are those of exocube 296232c and earlier.
SPEC_VERSION = 2


# log-scaled inputs whose valid values reach 0: encoded at least at their low end (a pCO2
# of 0 is encoded as 1e-6 bar, which is radiatively the same), never as log(0)
FLOORED = frozenset({"pco2_bar", "pch4_bar"})


@dataclass(frozen=True)
class ParamScale:
    """How one parameter is encoded: ``[low, high]`` (log-scaled if ``log_scale``) to [-1, 1]."""

    name: str
    low: float
    high: float
    log_scale: bool = False

    def encode(self, x: Tensor) -> Tensor:
        lo, hi = self.low, self.high
        if self.log_scale:
            if self.name in FLOORED:
                x = torch.clamp(x, min=lo)
            x, lo, hi = torch.log(x), math.log(lo), math.log(hi)
        return 2.0 * (x - lo) / (hi - lo) - 1.0

    @classmethod
    def of(cls, name: str) -> ParamScale:
        """The scale of ``name`` in the v1 input vector (:data:`exocube.params.MODEL_INPUT_V1`:
        the generator's ranges when models were first trained, not the validity bounds), or
        in the v2 vector for its new names (the names they share have the same scales)."""
        s = MODEL_INPUT_SPECS_V1.get(name) or MODEL_INPUT_SPECS_V2[name]
        return cls(name, float(s.low), float(s.high), bool(s.log_scale))


def current_scales(names: Sequence[str]) -> tuple[ParamScale, ...]:
    """The scales of ``names`` (what a newly trained model records in its spec)."""
    return tuple(ParamScale.of(n) for n in names)


def encode_with(scales: Sequence[ParamScale], values: Tensor, tidally_locked: Tensor) -> Tensor:
    """Raw parameters ``(B, len(scales))`` to [-1, 1] by their scales (log-scaled where they
    say so), plus the locking flag as -1/1: ``(B, len(scales) + 1)``."""
    if values.ndim != 2 or values.shape[1] != len(scales):
        raise ValueError(f"params must be (B, {len(scales)}) in the order "
                         f"{[s.name for s in scales]}, got {tuple(values.shape)}")
    cols = [s.encode(values[:, i]) for i, s in enumerate(scales)]
    cols.append(2.0 * tidally_locked.to(values.dtype) - 1.0)
    return torch.stack(cols, dim=-1)


#: The parameters (in order) and scales of every model trained by exocube 296232c and earlier.
LEGACY_PARAMS: tuple[ParamScale, ...] = tuple(ParamScale.of(s.name) for s in MODEL_INPUT_V1)
LEGACY_PARAM_NAMES: tuple[str, ...] = tuple(s.name for s in LEGACY_PARAMS)


@dataclass(frozen=True)
class ParamTable:
    """The parameters of every run of the store, under the names the model encodes."""

    scales: tuple[ParamScale, ...]
    runs: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # (run, parameter)
    tidally_locked: tuple[bool, ...]
    gravity_m_s2: tuple[float, ...]
    r_gas: tuple[float, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scales)

    @property
    def n_features(self) -> int:
        """Length of the encoded vector: the parameters and the locking flag."""
        return len(self.scales) + 1

    def index(self, name: str) -> int:
        """Column of parameter ``name``."""
        return self.names.index(name)

    def rows(self, runs: Sequence[str]) -> list[int]:
        """Table rows of ``runs``."""
        row = {r: i for i, r in enumerate(self.runs)}
        return [row[r] for r in runs]

    def values_of(self, runs: Sequence[str]) -> NDArray[np.float64]:
        """Raw parameters of ``runs``, ``(len(runs), len(names))``."""
        return np.asarray(self.values, np.float64).reshape(-1, len(self.scales))[self.rows(runs)]

    def locked_of(self, runs: Sequence[str]) -> NDArray[np.bool_]:
        return np.asarray(self.tidally_locked, bool)[self.rows(runs)]

    def mapping(self, run: str) -> dict[str, float]:
        """The parameters of one run by name."""
        return dict(zip(self.names, self.values[self.rows([run])[0]], strict=True))

    def vector(self, params: Mapping[str, float]) -> list[float]:
        """A parameter mapping as the model's raw input row (its names, in order)."""
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ParameterError(missing[0], None, "a value (the model was trained with "
                                 f"{', '.join(self.names)})")
        return [float(params[n]) for n in self.names]

    def encode(self, values: Tensor, tidally_locked: Tensor) -> Tensor:
        """Raw parameters ``(B, len(names))`` to the model's input ``(B, n_features)``."""
        return encode_with(self.scales, values, tidally_locked)


@dataclass(frozen=True)
class Split:
    """The runs of each split, and the datamodule seed (that drew them unless given)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int = 0

    def runs(self, name: str) -> tuple[str, ...]:
        """The runs of split ``name`` (``train``, ``val`` or ``test``)."""
        if name not in ("train", "val", "test"):
            raise ConfigError(f"split {name!r} does not exist; use train, val or test")
        return getattr(self, name)  # type: ignore[no-any-return]

    def as_dict(self) -> dict[str, list[str]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}

    @classmethod
    def from_dict(cls, split: Mapping[str, Sequence[str]], seed: int) -> Split:
        return cls(*(tuple(split.get(k, ())) for k in ("train", "val", "test")), seed=int(seed))


@dataclass(frozen=True)
class Selection:
    """The part of the store the model learns: levels [Pa] and a latitude/longitude box."""

    levels: tuple[float, ...] | None = None
    lat_range: tuple[float, float] | None = None
    lon_range: tuple[float, float] | None = None

    @property
    def full_sphere(self) -> bool:
        return self.lat_range is None and self.lon_range is None

    def as_dict(self) -> dict[str, Any]:
        return {k: None if v is None else list(v) for k, v in (
            ("levels", self.levels), ("lat_range", self.lat_range),
            ("lon_range", self.lon_range))}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Selection:
        return cls(*(None if d.get(k) is None else tuple(float(x) for x in d[k])
                     for k in ("levels", "lat_range", "lon_range")))


@dataclass(frozen=True)
class Stats:
    """Normalisation statistics of one variable: per level (3-D) or one value (2-D)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def as_dict(self, three_d: bool) -> dict[str, Any]:
        return {"mean": list(self.mean) if three_d else self.mean[0],
                "std": list(self.std) if three_d else self.std[0]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stats:
        return cls(*(tuple(float(x) for x in np.atleast_1d(np.asarray(d[k], float)))
                     for k in ("mean", "std")))


@dataclass(frozen=True)
class GridWindow:
    """The model's grid: a :class:`Grid` (its levels the selected ones) and the latitude and
    longitude index window ``[start, stop)`` of a box selection (the whole axis otherwise)."""

    grid: Grid
    lat_window: tuple[int, int]
    lon_window: tuple[int, int]

    @property
    def plev(self) -> NDArray[np.float64]:
        return self.grid.plev_array

    @property
    def lat(self) -> NDArray[np.float64]:
        return self.grid.lat[slice(*self.lat_window)]

    @property
    def lon(self) -> NDArray[np.float64]:
        return self.grid.lon[slice(*self.lon_window)]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.grid.plev), self.lat.size, self.lon.size)

    def coords(self) -> dict[str, NDArray[np.float64]]:
        """``{"plev", "lat", "lon"}`` arrays (Pa, degrees_north, degrees_east)."""
        return {"plev": self.plev, "lat": self.lat, "lon": self.lon}

    def matches(self, other: GridWindow) -> bool:
        """Same coordinates to a relative 1e-6."""
        a, b = self.coords(), other.coords()
        return all(a[k].shape == b[k].shape and np.allclose(a[k], b[k], rtol=1e-6) for k in a)

    @classmethod
    def from_coords(cls, plev: Sequence[float], lat: Sequence[float], lon: Sequence[float],
                    ) -> GridWindow:
        """The grid of coordinate lists (cell centres of a regular grid, possibly a box)."""
        nlat = _axis_size(lat, 180.0, "lat")
        nlon = _axis_size(lon, 360.0, "lon")
        gw = cls(Grid(nlat, nlon, tuple(float(p) for p in plev)),
                 _window(Grid(nlat, nlon).lat, lat, "lat"),
                 _window(Grid(nlat, nlon).lon, lon, "lon"))
        got = np.concatenate([gw.lat, gw.lon])
        if not np.allclose(got, np.concatenate([np.asarray(lat), np.asarray(lon)]),
                           rtol=0, atol=1e-9):
            raise ConfigError("the data spec's latitudes/longitudes are not the cell centres "
                              "of a regular exocube grid")
        return gw

    def as_dict(self) -> dict[str, Any]:
        return {"nlat": self.grid.nlat, "nlon": self.grid.nlon, "plev": list(self.grid.plev),
                "lat_window": list(self.lat_window), "lon_window": list(self.lon_window)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridWindow:
        grid = Grid(int(d["nlat"]), int(d["nlon"]), tuple(float(p) for p in d["plev"]))
        return cls(grid, _pair(d["lat_window"]), _pair(d["lon_window"]))


def _pair(x: Sequence[Any]) -> tuple[int, int]:
    return int(x[0]), int(x[1])


def _axis_size(centres: Sequence[float], span: float, axis: str) -> int:
    c = np.asarray(centres, float)
    if c.size < 2:
        raise ConfigError(f"the data spec's {axis} axis has {c.size} points; it needs 2")
    return round(span / float(c[1] - c[0]))


def _window(full: NDArray[np.float64], part: Sequence[float], axis: str) -> tuple[int, int]:
    start = int(np.argmin(np.abs(full - float(part[0]))))
    if start + len(part) > full.size:
        raise ConfigError(f"the data spec's {axis} axis does not fit a regular exocube grid")
    return start, start + len(part)


@dataclass(frozen=True)
class DataSpec:
    """Everything a model must remember about its data."""

    store: str
    version: str
    store_schema_version: str
    grid: GridWindow
    selection: Selection
    variables_3d: tuple[str, ...]
    variables_2d: tuple[str, ...]
    stats: Mapping[str, Stats]
    n_time: int
    window: int
    split: Split
    params: ParamTable

    @property
    def variables(self) -> tuple[str, ...]:
        return self.variables_3d + self.variables_2d

    @property
    def full_sphere(self) -> bool:
        return self.selection.full_sphere

    @property
    def plev(self) -> NDArray[np.float64]:
        return self.grid.plev

    @property
    def lat(self) -> NDArray[np.float64]:
        return self.grid.lat

    @property
    def lon(self) -> NDArray[np.float64]:
        return self.grid.lon

    @property
    def shape(self) -> tuple[int, int, int]:
        """(plev, lat, lon) of the model's fields."""
        return self.grid.shape

    def store_row(self, run: str) -> int:
        """Index of ``run`` along the store's run axis."""
        return self.params.rows([run])[0]

    def training_params(self) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Raw parameters and locking flags of the training runs."""
        return self.params.values_of(self.split.train), self.params.locked_of(self.split.train)

    # -- the checkpoint's dictionary -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (:data:`SPEC_VERSION`), read by :meth:`from_dict`."""
        p = self.params
        return {
            "spec_version": SPEC_VERSION, "store": self.store, "version": self.version,
            "store_schema_version": self.store_schema_version, "grid": self.grid.as_dict(),
            "selection": self.selection.as_dict(), "variables_3d": list(self.variables_3d),
            "variables_2d": list(self.variables_2d),
            "stats": {v: s.as_dict(v in self.variables_3d) for v, s in self.stats.items()},
            "n_time": self.n_time, "window": self.window, "split": self.split.as_dict(),
            "seed": self.split.seed,
            "params": {"scales": [[s.name, s.low, s.high, s.log_scale] for s in p.scales],
                       "runs": list(p.runs), "values": [list(v) for v in p.values],
                       "tidally_locked": list(p.tidally_locked),
                       "gravity_m_s2": list(p.gravity_m_s2), "r_gas": list(p.r_gas)},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSpec:
        """Read :meth:`to_dict`'s dictionary, or the unversioned one of older checkpoints."""
        version = d.get("spec_version")
        if version is None:
            return _from_legacy(d)
        if version != SPEC_VERSION:
            raise ConfigError(f"data spec version {version!r} is not known to this exocube "
                              f"(it reads {SPEC_VERSION} and the unversioned one); upgrade "
                              "exocube to load this checkpoint")
        p = d["params"]
        scales = tuple(ParamScale(str(n), float(lo), float(hi), bool(log))
                       for n, lo, hi, log in p["scales"])
        return cls(
            store=str(d["store"]), version=str(d["version"]),
            store_schema_version=str(d["store_schema_version"]),
            grid=GridWindow.from_dict(d["grid"]), selection=Selection.from_dict(d["selection"]),
            variables_3d=tuple(d["variables_3d"]), variables_2d=tuple(d["variables_2d"]),
            stats={v: Stats.from_dict(s) for v, s in d["stats"].items()},
            n_time=int(d["n_time"]), window=int(d["window"]),
            split=Split.from_dict(d["split"], d["seed"]), params=_param_table(scales, p))


def _param_table(scales: tuple[ParamScale, ...], p: Mapping[str, Any]) -> ParamTable:
    return ParamTable(scales=scales, runs=tuple(str(r) for r in p["runs"]),
                      values=tuple(tuple(float(x) for x in row) for row in p["values"]),
                      tidally_locked=tuple(bool(x) for x in p["tidally_locked"]),
                      gravity_m_s2=tuple(float(x) for x in p["gravity_m_s2"]),
                      r_gas=tuple(float(x) for x in p["r_gas"]))


def _from_legacy(d: Mapping[str, Any]) -> DataSpec:
    """The spec of a checkpoint written by exocube 296232c or earlier (a plain dictionary)."""
    names = tuple(d["params"].get("names", LEGACY_PARAM_NAMES))
    if names != LEGACY_PARAM_NAMES:
        raise ConfigError(f"an unversioned data spec names the parameters {list(names)}; "
                          f"unversioned specs always hold {list(LEGACY_PARAM_NAMES)}")
    sel = d.get("selection", {})
    return DataSpec(
        store=str(d["store"]), version=str(d["version"]),
        store_schema_version=str(d["schema_version"]),
        grid=GridWindow.from_coords(d["plev"], d["lat"], d["lon"]),
        selection=Selection.from_dict(sel),
        variables_3d=tuple(d["variables_3d"]), variables_2d=tuple(d["variables_2d"]),
        stats={v: Stats.from_dict(s) for v, s in d["stats"].items()},
        n_time=int(d["n_time"]), window=int(d["window"]),
        split=Split.from_dict(d["split"], d.get("seed", 0)),
        params=_param_table(LEGACY_PARAMS, d["params"]))
