"""``validate``: schema checks of a store version and a quality score per run.

Per run, over the points above the surface (``plev <= ps``) and below the
run's highest valid level (levels above a source model's top are NaN by
design and only reported):

- ``nonfinite``: fraction of NaN/inf values;
- ``out_of_range``: fraction of values outside physical bounds (:data:`BOUNDS`);
- ``supersaturation``: fraction of points with ``hus > 1.05 * q_sat(ta, p)``;
- ``hydrostatic``: median relative error of the ``zg`` thickness between
  adjacent levels against the hypsometric equation with the run's gravity
  and gas constant.

``score = min(1 - nonfinite, 1 - out_of_range, 1 - supersaturation,
1 - hydrostatic / 0.1)``, clipped to [0, 1]. A run whose source file said
``equilibrated = 0`` (the ExoPlaSim driver's flag, kept in the run's
``summary.json`` at ingest) gets the reason "not equilibrated: ..." and its
score capped at :data:`NOT_EQUILIBRATED_SCORE`. A run scoring below the
threshold (default 0.9) is quarantined: it stays in the store, and
:func:`quarantined_runs` lists it so training splits can leave it out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
import xarray as xr

from exocube.catalog import Dataset, RunQuality, session_scope, upgrade
from exocube.config import get_settings
from exocube.cubes.runs import read_summary
from exocube.cubes.schema import LATER_PARAMS, RUN_PARAMS
from exocube.cubes.store import StoreLocation
from exocube.cubes.versions import dataset_row, latest_id, open_version, read_manifest
from exocube.errors import CatalogError, StoreError
from exocube.grid import CF_META, FIELDS_2D, FIELDS_3D
from exocube.physics import layer_thickness, q_sat, virtual_temperature

log = logging.getLogger(__name__)
BOUNDS: dict[str, tuple[float, float]] = {
    "ta": (20.0, 1500.0), "ts": (20.0, 1500.0), "ua": (-400.0, 400.0), "va": (-400.0, 400.0),
    "hus": (0.0, 1.0), "zg": (-2.0e3, 1.0e6), "ps": (1.0e2, 1.0e8),
}
HYDROSTATIC_SCALE = 0.1
# score cap of a run flagged not equilibrated: below the default threshold, so it is
# quarantined unless validate runs with --threshold 0.5 or lower
NOT_EQUILIBRATED_SCORE = 0.5


@dataclass
class RunReport:
    run_id: str
    score: float
    quarantined: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StoreReport:
    store: str
    version_id: str
    schema_problems: list[str]
    runs: list[RunReport]
    threshold: float

    @property
    def quarantined(self) -> list[str]:
        return [r.run_id for r in self.runs if r.quarantined]

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "version_id": self.version_id,
                "threshold": self.threshold, "schema_problems": self.schema_problems,
                "quarantined": self.quarantined, "runs": [asdict(r) for r in self.runs]}


def schema_problems(ds: xr.Dataset) -> list[str]:
    """Dims, coordinate order and units that differ from the canonical cube."""
    problems = []
    for dim in ("run", "time", "plev", "lat", "lon"):
        if dim not in ds.dims:
            problems.append(f"dimension {dim!r} missing")
    checks = {"plev": (np.diff(ds["plev"].values) < 0).all(),
              "lat": (np.diff(ds["lat"].values) > 0).all(),
              "lon": (np.diff(ds["lon"].values) > 0).all()
              and ds["lon"].min() >= 0 and ds["lon"].max() < 360}
    for name, ok in checks.items():
        if not bool(ok):
            problems.append(f"coordinate {name} is not in canonical order/range")
    for name in FIELDS_3D + FIELDS_2D:
        units = ds[name].attrs.get("units") if name in ds else None
        if units != CF_META[name][1]:
            problems.append(f"{name} units {units!r}, expected {CF_META[name][1]!r}")
    problems += [f"parameter variable {p!r} missing" for p in RUN_PARAMS
                 if p not in ds and p not in LATER_PARAMS]
    return problems


def check_run(run: xr.Dataset, source_attrs: Mapping[str, Any] | None = None
              ) -> tuple[dict[str, float], list[str]]:
    """Quality metrics of one run (a Dataset without the run dimension) and reasons;
    ``source_attrs``: the run's summary ``attrs`` (its equilibrium flag, if any)."""
    p = run["plev"].values[None, :, None, None]
    ps = run["ps"].values[:, None]
    ground = p > ps
    top = _above_top(np.isfinite(run["ta"].values))
    inside = ~ground & ~top
    metrics: dict[str, float] = {"levels_above_source_top": float(top.all(axis=(0, 2, 3)).sum())}
    nonfinite, bad_range = [], []
    for name in FIELDS_3D + FIELDS_2D:
        a = run[name].values
        where = inside if name in FIELDS_3D else np.ones(a.shape, bool)
        vals = a[where]
        nonfinite.append(np.mean(~np.isfinite(vals)) if vals.size else 0.0)
        lo, hi = BOUNDS[name]
        finite = vals[np.isfinite(vals)]
        bad_range.append(np.mean((finite < lo) | (finite > hi)) if finite.size else 0.0)
        metrics[f"{name}_nonfinite"] = float(nonfinite[-1])
        metrics[f"{name}_out_of_range"] = float(bad_range[-1])
    metrics["nonfinite"] = float(max(nonfinite))
    metrics["out_of_range"] = float(max(bad_range))
    metrics["supersaturation"] = _supersaturation(run, inside)
    metrics["hydrostatic"] = _hydrostatic_error(run)
    metrics.update(equilibrium_metrics(source_attrs or {}))
    return metrics, _reasons(metrics)


def equilibrium_metrics(attrs: Mapping[str, Any]) -> dict[str, float]:
    """``equilibrated`` (1.0/0.0) and the known diagnostics; nothing for a run without
    the flag (generator runs, other GCMs, runs ingested before the flag was kept)."""
    if "equilibrated" not in attrs:
        return {}
    m = {"equilibrated": float(bool(attrs["equilibrated"]))}
    for name in ("toa_net_flux_w_m2", "ts_drift_k_per_year", "max_toa_imbalance_w_m2",
                 "max_ts_drift_k_per_year"):
        if attrs.get(name) is not None:
            m[name] = float(attrs[name])
    return m


def _equilibrium_reason(m: dict[str, float]) -> str:
    def value(name: str, unit: str) -> str:
        return f"{m[name]:.3g} {unit}" if name in m else "unknown"

    limits = ("thresholds |TOA| <= " + value("max_toa_imbalance_w_m2", "W m-2")
              + ", |drift| <= " + value("max_ts_drift_k_per_year", "K/yr"))
    return (f"not equilibrated: TOA net flux {value('toa_net_flux_w_m2', 'W m-2')}, "
            f"ts drift {value('ts_drift_k_per_year', 'K/yr')} over the last year ({limits})")


def _above_top(finite: np.ndarray) -> np.ndarray:
    """Levels above each column's highest finite level (axis 1, surface first)."""
    missing_up = np.flip(np.logical_and.accumulate(np.flip(~finite, axis=1), axis=1), axis=1)
    return missing_up & finite.any(axis=1, keepdims=True)


def _supersaturation(run: xr.Dataset, inside: np.ndarray) -> float:
    ta, hus = run["ta"].values, run["hus"].values
    p = np.broadcast_to(run["plev"].values[None, :, None, None], ta.shape)
    ok = inside & np.isfinite(ta) & np.isfinite(hus)
    if not ok.any():
        return 0.0
    return float(np.mean(hus[ok] > 1.05 * q_sat(ta[ok], p[ok])))


def _hydrostatic_error(run: xr.Dataset) -> float:
    ta, hus, zg = run["ta"].values, run["hus"].values, run["zg"].values
    plev = run["plev"].values
    tv = virtual_temperature(ta, hus)
    expected = layer_thickness(tv[:, :-1], tv[:, 1:], plev[None, :-1, None, None],
                               plev[None, 1:, None, None], float(run["gravity_m_s2"]),
                               float(run["r_gas_j_kg_k"]))
    actual = zg[:, 1:] - zg[:, :-1]
    ok = np.isfinite(expected) & np.isfinite(actual) & (expected > 0)
    if not ok.any():
        return 1.0
    return float(np.median(np.abs(actual[ok] - expected[ok]) / expected[ok]))


def _reasons(m: dict[str, float]) -> list[str]:
    reasons = []
    if m["nonfinite"] > 0:
        reasons.append(f"{m['nonfinite']:.1%} non-finite values above the surface")
    if m["out_of_range"] > 0:
        reasons.append(f"{m['out_of_range']:.1%} values outside physical bounds")
    if m["supersaturation"] > 0.001:
        reasons.append(f"{m['supersaturation']:.1%} points with hus > 1.05 q_sat")
    if m["hydrostatic"] > 0.01:
        reasons.append(f"zg thickness differs from hypsometric by {m['hydrostatic']:.1%} "
                       "(median)")
    if m.get("equilibrated") == 0.0:
        reasons.append(_equilibrium_reason(m))
    if m["levels_above_source_top"] > 0:
        reasons.append(f"{int(m['levels_above_source_top'])} top levels above the source "
                       "model top (NaN, not scored)")
    return reasons


def score(m: dict[str, float]) -> float:
    s = min(1 - m["nonfinite"], 1 - m["out_of_range"], 1 - m["supersaturation"],
            1 - m["hydrostatic"] / HYDROSTATIC_SCALE)
    if m.get("equilibrated") == 0.0:
        s = min(s, NOT_EQUILIBRATED_SCORE)
    return float(np.clip(s, 0.0, 1.0))


def validate_store(url: str, version: str | None = None, *, threshold: float = 0.9,
                   database_url: str | None = None,
                   storage_options: dict[str, Any] | None = None) -> StoreReport:
    """Score every run of a version, store the scores in the catalogue, return the report."""
    loc = StoreLocation.parse(url, storage_options)
    vid = version or latest_id(loc)
    ds = open_version(loc, vid)
    vid = str(ds.attrs["version_id"])
    keys = {r["run_id"]: r["key"] for r in read_manifest(loc, vid)["runs"]}
    reports = []
    for i, run_id in enumerate(ds["run"].values):
        summary = read_summary(loc, keys[str(run_id)])
        if summary is None:
            raise StoreError(f"{loc.url}: run {run_id} of version {vid} has no summary.json "
                             f"(runs/{keys[str(run_id)]}); the store is damaged, re-ingest "
                             "its source file into a new store")
        # one run at a time, read by threads in this process
        metrics, reasons = check_run(ds.isel(run=i).compute(scheduler="threads"),
                                     summary.get("attrs"))
        s = score(metrics)
        reports.append(RunReport(str(run_id), s, s < threshold, reasons, metrics))
    report = StoreReport(loc.url, vid, schema_problems(ds), reports, threshold)
    _record(database_url or get_settings().database_url, report)
    return report


def _record(database_url: str, report: StoreReport) -> None:
    upgrade(database_url)
    with session_scope(database_url) as session:
        row = dataset_row(session, report.store, report.version_id)
        if row is None:
            raise CatalogError(
                f"version {report.version_id} of {report.store} is not in the catalogue at "
                "this database URL; validate with the catalogue the store was ingested with"
            )
        session.execute(sa.delete(RunQuality).where(RunQuality.dataset_id == row.id))
        for r in report.runs:
            session.add(RunQuality(dataset_id=row.id, run_id=r.run_id, score=r.score,
                                   reasons=r.reasons, quarantined=r.quarantined))


def quarantined_runs(url: str, version: str | None = None, *,
                     database_url: str | None = None,
                     storage_options: dict[str, Any] | None = None) -> set[str]:
    """Run ids of the version that ``validate`` quarantined.

    Runs are immutable, so a run's newest score in any version of this store counts.
    """
    loc = StoreLocation.parse(url, storage_options)
    vid = version or latest_id(loc)
    if vid is None:
        raise StoreError(f"{loc.url} holds no cube store version yet")
    ds = open_version(loc, vid)
    runs = {str(r) for r in ds["run"].values}
    with session_scope(database_url or get_settings().database_url) as session:
        rows = session.execute(
            sa.select(RunQuality.run_id, RunQuality.quarantined, RunQuality.checked_at,
                      RunQuality.id)
            .join(Dataset, Dataset.id == RunQuality.dataset_id)
            .where(Dataset.store_uri == loc.url, RunQuality.run_id.in_(runs))
            .order_by(RunQuality.checked_at, RunQuality.id)
        ).all()
    newest = {row.run_id: row.quarantined for row in rows}
    return {run for run, q in newest.items() if q}
