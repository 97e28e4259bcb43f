"""The cube-store datamodule: runs split by id, normalised samples with NaN masks.

A sample is one run and one window of ``window`` consecutive time steps,
averaged over the window (a time-mean store has one step, so ``window=1``):
the surrogate predicts the climate state, and the mean over a window is its
estimate from that run. Points below ground (NaN in any step of the window)
are masked out: ``m3``/``m2`` are ``False`` there and ``x3``/``x2`` hold 0.

Runs are split into train/val/test by a seeded permutation of the sorted,
non-quarantined run ids, so the same store, fractions and seed always give
the same split. The split, the grid, the normalisation statistics and the
training parameter table are collected in :attr:`CubeDataModule.spec` (a
:class:`~exocube.ml.spec.DataSpec`), which the model saves in its checkpoint.

With ``num_workers > 0`` every worker opens its own store handle on first
use (handles are not pickled). Workers are spawned, not forked: zarr keeps an
event-loop thread, and a forked copy of it can deadlock. With ``preload`` the selected runs are read
into memory once in :meth:`CubeDataModule.setup`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import lightning as L
import numpy as np
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset

from exocube.cubes import open_store, quarantined_runs
from exocube.errors import ConfigError, StoreError
from exocube.grid import FIELDS_2D, FIELDS_3D
from exocube.ml.spec import (
    DataSpec,
    GridWindow,
    ParamScale,
    ParamTable,
    Selection,
    Split,
    Stats,
)
from exocube.ml.transforms import Augmentation
from exocube.params import MODEL_INPUTS, OPTIONAL_DEFAULTS
from exocube.physics import R_DRY_AIR

log = logging.getLogger(__name__)

DEFAULT_VARIABLES: tuple[str, ...] = FIELDS_3D + FIELDS_2D
#: The input vectors a new model can be trained with (``inputs``), by version.
INPUT_VERSIONS: tuple[str, ...] = tuple(MODEL_INPUTS)


def split_runs(run_ids: Sequence[str], excluded: set[str], val_fraction: float,
               test_fraction: float, seed: int) -> dict[str, list[str]]:
    """Seeded train/val/test split of ``run_ids`` minus ``excluded``, by run."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must "
                          "be in [0, 1) with a sum below 1")
    ids = sorted(set(run_ids) - excluded)
    order = np.random.default_rng(seed).permutation(len(ids))
    # a positive fraction gets at least one run, so small stores still validate and test
    n_test = max(round(test_fraction * len(ids)), int(test_fraction > 0))
    n_val = max(round(val_fraction * len(ids)), int(val_fraction > 0))
    if len(ids) - n_test - n_val < 1:
        raise StoreError(f"{len(ids)} usable runs leave none for training with "
                         f"val_fraction={val_fraction}, test_fraction={test_fraction}; "
                         "ingest more runs or lower the fractions")
    shuffled = [ids[i] for i in order]
    return {"test": sorted(shuffled[:n_test]), "val": sorted(shuffled[n_test:n_test + n_val]),
            "train": sorted(shuffled[n_test + n_val:])}


def _stats(ds: xr.Dataset, var: str, plev_idx: list[int] | None) -> Stats:
    out = []
    for key in ("mean", "std"):
        name = f"{var}_{key}"
        if name not in ds:
            raise StoreError(f"store has no normalisation statistic {name!r}; re-ingest it "
                             "with a current exocube (ingest writes <var>_mean/_std/_min/_max)")
        values = np.atleast_1d(np.asarray(ds[name].values, dtype=float))
        if plev_idx is not None and var in FIELDS_3D:
            values = values[plev_idx]
        out.append(tuple(float(x) for x in values))
    return Stats(*out)


class RunWindowDataset(Dataset):
    """Samples ``(run, window)`` of a store, normalised, with masks.

    ``arrays`` (when preloaded) maps each variable to an array over
    ``(run, time, ...)`` for exactly ``runs``; otherwise the store is opened
    lazily, once per process.
    """

    def __init__(self, url: str, version: str | None, runs: Sequence[str], spec: DataSpec,
                 indexers: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
        self.url, self.version, self.runs, self.spec = url, version, list(runs), spec
        self.indexers = indexers
        self.arrays = arrays
        self.window = spec.window
        self.n_windows = spec.n_time // self.window
        self.v3, self.v2 = list(spec.variables_3d), list(spec.variables_2d)
        st = spec.stats
        self.mean3 = np.array([st[v].mean for v in self.v3], np.float32).reshape(
            len(self.v3), -1, 1, 1)
        self.std3 = np.array([st[v].std for v in self.v3], np.float32).reshape(
            len(self.v3), -1, 1, 1)
        self.mean2 = np.array([st[v].mean for v in self.v2], np.float32).reshape(-1, 1, 1)
        self.std2 = np.array([st[v].std for v in self.v2], np.float32).reshape(-1, 1, 1)
        for a in (self.mean3, self.mean2):
            a[~np.isfinite(a)] = 0.0
        for s, m in ((self.std3, self.mean3), (self.std2, self.mean2)):
            s[~np.isfinite(s)] = 1.0
            np.maximum(s, np.maximum(1e-6 * np.abs(m), 1e-30), out=s)
        p = spec.params
        self.param_table = np.asarray(p.values, np.float32)
        self.locked = np.asarray(p.tidally_locked, bool)
        self.gravity = np.asarray(p.gravity_m_s2, np.float32)
        self.r_gas = np.asarray(p.r_gas, np.float32)
        self.row = {r: i for i, r in enumerate(p.runs)}
        self._ds: xr.Dataset | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ds"] = None
        return state

    def __len__(self) -> int:
        return len(self.runs) * self.n_windows

    def _store(self) -> xr.Dataset:
        if self._ds is None:
            self._ds = open_store(self.url, self.version)
        return self._ds

    def _read(self, var: str, i_run: int, t0: int) -> np.ndarray:
        if self.arrays is not None:
            return self.arrays[var][i_run, t0:t0 + self.window]
        da = self._store()[var].isel(run=self.row_index(i_run),
                                     time=slice(t0, t0 + self.window), **self.indexers)
        return np.asarray(da.values)

    def row_index(self, i_run: int) -> int:
        return self.row[self.runs[i_run]]

    @staticmethod
    def _window_mean(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        valid = np.isfinite(a).all(axis=0)
        mean = np.where(valid, np.nan_to_num(a).mean(axis=0), 0.0)
        return mean.astype(np.float32), valid

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        i_run, w = divmod(idx, self.n_windows)
        t0 = w * self.window
        x3 = np.empty((len(self.v3), *self.spec.shape), np.float32)
        m3 = np.empty(x3.shape, bool)
        for c, v in enumerate(self.v3):
            x3[c], m3[c] = self._window_mean(self._read(v, i_run, t0))
        x2 = np.empty((len(self.v2), *self.spec.shape[1:]), np.float32)
        m2 = np.empty(x2.shape, bool)
        for c, v in enumerate(self.v2):
            x2[c], m2[c] = self._window_mean(self._read(v, i_run, t0))
        x3 = np.where(m3, (x3 - self.mean3) / self.std3, 0.0).astype(np.float32)
        x2 = np.where(m2, (x2 - self.mean2) / self.std2, 0.0).astype(np.float32)
        row = self.row[self.runs[i_run]]
        return {
            "x3": torch.from_numpy(x3), "m3": torch.from_numpy(m3),
            "x2": torch.from_numpy(x2), "m2": torch.from_numpy(m2),
            "params": torch.from_numpy(self.param_table[row]),
            "tidally_locked": torch.tensor(bool(self.locked[row])),
            "gravity": torch.tensor(float(self.gravity[row])),
            "r_gas": torch.tensor(float(self.r_gas[row])),
            "run_index": torch.tensor(row),
        }


class CubeDataModule(L.LightningDataModule):
    """Train/val/test loaders over a cube store (local path or ``s3://``).

    Args:
        zarr_root: store URL (a path or ``s3://bucket/prefix``).
        version: store version id (``None``: the current one).
        variables: fields to learn, a subset of ``ta ua va hus zg ps ts``.
        levels: pressure levels [Pa] to keep (nearest store level within 1 %); all if ``None``.
        lat_range, lon_range: keep only this latitude / longitude box [degrees]; the
            model then pads plainly instead of across the poles / periodically.
        window: time steps per sample, averaged (1 for a time-mean store).
        val_fraction, test_fraction, seed: the run split.
        batch_size, num_workers: loader settings.
        preload: read the selected data into memory in ``setup``; ``None`` decides by
            ``preload_limit_mb``.
        augment_roll, augment_mirror, noise_std: training augmentations.
        inputs: the model's parameter vector: ``v2`` the climate drivers
            (:data:`exocube.params.MODEL_INPUT_V2`: radius, gravity, rotation, insolation,
            stellar temperature, surface pressure, CO2 and CH4), ``v1`` the request fields
            of :data:`exocube.params.MODEL_INPUT_V1` (host mass, stellar log g and
            metallicity included). The store's per-run variables of those names are read;
            an optional parameter a store lacks takes its default.
        split: a fixed split (``{"train": [...], "val": [...], "test": [...]}``), e.g.
            from a checkpoint; overrides the seeded one.
        database_url: catalogue holding the store's quarantine list (default: settings).
    """

    def __init__(self, zarr_root: str, version: str | None = None,
                 variables: list[str] | None = None, levels: list[float] | None = None,
                 lat_range: tuple[float, float] | None = None,
                 lon_range: tuple[float, float] | None = None, window: int = 1,
                 val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                 batch_size: int = 4, num_workers: int = 0, preload: bool | None = None,
                 preload_limit_mb: float = 1024.0, augment_roll: bool = True,
                 augment_mirror: bool = True, noise_std: float = 0.0,
                 split: dict[str, list[str]] | None = None,
                 database_url: str | None = None, inputs: str = "v1") -> None:
        super().__init__()
        if inputs not in MODEL_INPUTS:
            raise ConfigError(f"inputs={inputs!r} is not an input version; choose from "
                              f"{list(MODEL_INPUTS)}")
        self.zarr_root, self.version = zarr_root, version
        self.variables = list(variables) if variables is not None else list(DEFAULT_VARIABLES)
        unknown = [v for v in self.variables if v not in DEFAULT_VARIABLES]
        if unknown:
            raise ConfigError(f"unknown variables {unknown}; choose from {list(DEFAULT_VARIABLES)}")
        if window < 1:
            raise ConfigError(f"window must be >= 1 time step, got {window}")
        self.levels, self.lat_range, self.lon_range = levels, lat_range, lon_range
        self.window = window
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.batch_size, self.num_workers = batch_size, num_workers
        self.preload, self.preload_limit_mb = preload, preload_limit_mb
        self.augment_roll, self.augment_mirror, self.noise_std = (
            augment_roll, augment_mirror, noise_std)
        self.fixed_split = split
        self.database_url = database_url
        self.datasets: dict[str, RunWindowDataset] = {}
        self.augmentation: Augmentation | None = None
        #: the parameters (and their scales) of the spec's table; a model's own in ``for_spec``
        self.param_scales = tuple(ParamScale.of(s.name) for s in MODEL_INPUTS[inputs])

    # -- the store and what it holds -------------------------------------------------------
    @cached_property
    def store(self) -> xr.Dataset:
        return open_store(self.zarr_root, self.version)

    def _indexers(self, ds: xr.Dataset) -> dict[str, Any]:
        idx: dict[str, Any] = {}
        if self.levels is not None:
            plev = ds["plev"].values
            pick = [int(np.argmin(np.abs(plev - p))) for p in self.levels]
            bad = [p for p, i in zip(self.levels, pick, strict=True)
                   if abs(plev[i] - p) > 0.01 * p]
            if bad:
                raise ConfigError(f"levels {bad} Pa are not in the store (its levels: "
                                  f"{[round(float(p), 1) for p in plev]} Pa)")
            idx["plev"] = sorted(set(pick))
        for dim, rng in (("lat", self.lat_range), ("lon", self.lon_range)):
            if rng is not None:
                c = ds[dim].values
                sel = np.flatnonzero((c >= rng[0]) & (c <= rng[1]))
                if sel.size < 4:
                    raise ConfigError(f"{dim}_range={list(rng)} keeps {sel.size} grid points; "
                                      "it needs at least 4")
                idx[dim] = slice(int(sel[0]), int(sel[-1]) + 1)
        return idx

    def _check_store(self, ds: xr.Dataset) -> None:
        missing = [v for v in self.variables if v not in ds.data_vars]
        names = [s.name for s in self.param_scales]
        missing += [p for p in (*names, "gravity_m_s2", "tidally_locked")
                    if p not in ds and p not in OPTIONAL_DEFAULTS]
        if missing:
            raise StoreError(f"store {self.zarr_root} lacks {missing} asked for by the config; "
                             f"it has {sorted(map(str, ds.data_vars))}. Remove them from "
                             "data.variables or ingest a store that has them")
        if self.window > ds.sizes["time"]:
            raise ConfigError(f"window={self.window} exceeds the store's {ds.sizes['time']} "
                              "time steps")

    def quarantined(self) -> set[str]:
        """Runs that validation quarantined in this store version (excluded from every split)."""
        return quarantined_runs(self.zarr_root, self.store.attrs["version_id"],
                                database_url=self.database_url)

    @cached_property
    def spec(self) -> DataSpec:
        """Everything the model must remember about its data."""
        ds = self.store
        self._check_store(ds)
        indexers = self._indexers(ds)
        sub = ds.isel(indexers)
        run_ids = [str(r) for r in ds["run"].values]
        split = self.fixed_split or split_runs(
            run_ids, self.quarantined(), self.val_fraction, self.test_fraction, self.seed)
        unknown = sorted(set().union(*split.values()) - set(run_ids))
        if unknown:
            raise StoreError(f"split names runs not in the store: {unknown[:5]}; evaluate on "
                             "the store the model was trained on")
        return DataSpec(
            store=self.zarr_root, version=str(ds.attrs["version_id"]),
            store_schema_version=str(ds.attrs["schema_version"]),
            grid=GridWindow.from_coords(*(sub[k].values.astype(float).tolist()
                                          for k in ("plev", "lat", "lon"))),
            selection=Selection.from_dict({"levels": self.levels, "lat_range": self.lat_range,
                                           "lon_range": self.lon_range}),
            variables_3d=tuple(v for v in self.variables if v in FIELDS_3D),
            variables_2d=tuple(v for v in self.variables if v in FIELDS_2D),
            stats={v: _stats(ds, v, indexers.get("plev")) for v in self.variables},
            n_time=int(ds.sizes["time"]), window=self.window,
            split=Split.from_dict(split, self.seed), params=self._param_table(ds, run_ids))

    def _param_table(self, ds: xr.Dataset, run_ids: list[str]) -> ParamTable:
        scales = self.param_scales
        values = np.stack([ds[s.name].values.astype(float) if s.name in ds
                           else np.full(len(run_ids), OPTIONAL_DEFAULTS[s.name])
                           for s in scales], axis=-1)
        r_gas = (ds["r_gas_j_kg_k"].values.astype(float).tolist() if "r_gas_j_kg_k" in ds
                 else [R_DRY_AIR] * len(run_ids))
        return ParamTable(
            scales=scales, runs=tuple(run_ids),
            values=tuple(tuple(float(x) for x in row) for row in values),
            tidally_locked=tuple(bool(x) for x in ds["tidally_locked"].values),
            gravity_m_s2=tuple(float(x) for x in ds["gravity_m_s2"].values),
            r_gas=tuple(float(x) for x in r_gas))

    @classmethod
    def for_spec(cls, spec: DataSpec, zarr_root: str | None = None, version: str | None = None,
                 database_url: str | None = None) -> CubeDataModule:
        """A datamodule with ``spec``'s variables, selection, window and split over
        ``zarr_root`` (default: the spec's own store and version)."""
        sel = spec.selection
        dm = cls(zarr_root or spec.store, version if zarr_root else spec.version,
                 variables=list(spec.variables),
                 levels=None if sel.levels is None else list(sel.levels),
                 lat_range=sel.lat_range, lon_range=sel.lon_range, window=spec.window,
                 seed=spec.split.seed, split=spec.split.as_dict(),
                 database_url=database_url)
        dm.param_scales = spec.params.scales
        return dm

    def grid(self) -> GridWindow:
        """The grid of the selected part of the store (read without computing the spec)."""
        sub = self.store.isel(self._indexers(self.store))
        return GridWindow.from_coords(*(sub[k].values.astype(float).tolist()
                                        for k in ("plev", "lat", "lon")))

    # -- Lightning hooks ---------------------------------------------------------------------
    def _estimated_mb(self, n_runs: int) -> float:
        spec = self.spec
        n3 = len(spec.variables_3d) * math.prod(spec.shape)
        n2 = len(spec.variables_2d) * math.prod(spec.shape[1:])
        return n_runs * spec.n_time * (n3 + n2) * 4 / 2**20

    def _preload(self, runs: list[str]) -> dict[str, np.ndarray]:
        rows = self.spec.params.rows(runs)
        sub = self.store.isel(self._indexers(self.store)).isel(run=rows)
        log.info("preloading %d runs (%.1f MB)", len(runs), self._estimated_mb(len(runs)))
        return {v: np.asarray(sub[v].values) for v in self.variables}

    def make_dataset(self, split: str) -> RunWindowDataset:
        """The dataset of one split (``train``, ``val`` or ``test``)."""
        runs = self.spec.split.runs(split)
        preload = self.preload
        if preload is None:
            preload = self._estimated_mb(len(runs)) <= self.preload_limit_mb
        arrays = self._preload(runs) if preload and runs else None
        return RunWindowDataset(self.zarr_root, self.spec.version, runs, self.spec,
                                self._indexers(self.store), arrays)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",),
                  "predict": ("test",)}.get(stage or "fit", ("train", "val", "test"))
        for name in wanted:
            if name not in self.datasets:
                self.datasets[name] = self.make_dataset(name)
        if self.augmentation is None:
            self.augmentation = self._make_augmentation()

    def _make_augmentation(self) -> Augmentation:
        v3 = self.spec.variables_3d
        va_channel = v3.index("va") if "va" in v3 else None
        offset = None
        if va_channel is not None:
            st = self.spec.stats["va"]
            mean = np.nan_to_num(np.asarray(st.mean, float))
            std = np.asarray(st.std, float)
            std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
            offset = torch.tensor(-2.0 * mean / std, dtype=torch.float32)
        roll = self.augment_roll and self.spec.full_sphere
        return Augmentation(roll, self.augment_mirror and self.spec.full_sphere,
                            self.noise_std, va_channel, offset)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.datasets[split]
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0,
                          multiprocessing_context="spawn" if self.num_workers > 0 else None,
                          drop_last=shuffle and len(ds) > self.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int
                                ) -> dict[str, torch.Tensor]:
        if self.trainer is not None and self.trainer.training and self.augmentation is not None:
            self.augmentation.to(batch["x3"].device)
            return self.augmentation(batch)
        return batch
