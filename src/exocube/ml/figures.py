"""The evaluation's PNG figures: zonal means, maps, RMSE by level, training curves, parity.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly, which
need no pyplot state and no backend choice (PNG output uses Agg).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from exocube.ml.baselines import Samples
from exocube.ml.scalar import SCALAR_NAMES, SCALAR_UNITS
from exocube.ml.scores import Array, Prediction, field_scalars, field_scores
from exocube.ml.spec import DataSpec

log = logging.getLogger(__name__)

DPI = 90


def make_figures(out: Path, preds: dict[str, Prediction], truth: Prediction, s: Samples,
                 spec: DataSpec, map_levels: list[float], checkpoint: str,
                 truth_sc: Array | None, substellar: float) -> dict[str, str]:
    """Write the figures into ``out``; return their file names by figure name."""
    figs: dict[str, str] = {}
    v3 = list(spec.variables_3d)
    plev, lat, lon = spec.plev, spec.lat, spec.lon
    for var in [v for v in ("ta", "ua") if v in v3]:
        figs[f"zonal_mean_{var}"] = _zonal_mean_figure(out, var, v3.index(var), preds["unet"],
                                                      truth, s, plev, lat)
    for level in map_levels:
        k = int(np.argmin(np.abs(plev - level)))
        if "ta" in v3:
            figs[f"map_ta_{plev[k]:.0f}Pa"] = _map_figure(out, "ta", v3.index("ta"), k,
                                                          preds["unet"], truth, s, lat, lon,
                                                          plev)
    figs["rmse_by_level_ta"] = _rmse_by_level(out, preds, truth, s, spec) if "ta" in v3 else ""
    curves = _training_curves(out, checkpoint)
    if curves:
        figs["training_curves"] = curves
    if truth_sc is not None:
        figs["parity_scalars"] = _parity(out, preds, truth_sc, spec, substellar)
    return {k: v for k, v in figs.items() if v}


def _save(fig: Figure, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)
    return name


def _zonal_mean(f: Array, m: NDArray[np.bool_]) -> Array:
    """Mean over samples and longitude of valid points, NaN where none: (L, H)."""
    cnt = m.sum(axis=(0, 3))
    return np.where(cnt > 0, np.where(m, f, 0).sum(axis=(0, 3)) / np.maximum(cnt, 1), np.nan)


def _truth_pred_error(fig: Figure, axes: NDArray[np.object_], x: Array, y: Array, t: Array,
                      p: Array, title: str, xlabel: str) -> None:
    """Truth, U-Net and their difference side by side, the first two on one colour scale."""
    finite = np.isfinite(t)
    lim = (np.nanmin(t), np.nanmax(t)) if finite.any() else (0, 1)
    err = p - t
    elim = max(float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 1.0, 1e-12)
    for ax, data, label, kw in (
            (axes[0], t, "truth", {"vmin": lim[0], "vmax": lim[1], "cmap": "viridis"}),
            (axes[1], p, "U-Net", {"vmin": lim[0], "vmax": lim[1], "cmap": "viridis"}),
            (axes[2], err, "U-Net - truth", {"vmin": -elim, "vmax": elim, "cmap": "RdBu_r"})):
        im = ax.pcolormesh(x, y, data, shading="nearest", **kw)
        ax.set_title(f"{title}, {label}")
        ax.set_xlabel(xlabel)
        fig.colorbar(im, ax=ax)


def _zonal_mean_figure(out: Path, var: str, c: int, pred: Prediction, truth: Prediction,
                       s: Samples, plev: Array, lat: Array) -> str:
    t = _zonal_mean(truth.f3[:, c], s.m3[:, c])
    p = _zonal_mean(pred.f3[:, c], s.m3[:, c])
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3, sharey=True)
    _truth_pred_error(fig, axes, lat, plev / 100, t, p, f"{var} zonal mean", "latitude [deg]")
    axes[0].set_yscale("log")
    axes[0].invert_yaxis()
    axes[0].set_ylabel("pressure [hPa]")
    return _save(fig, out, f"zonal_mean_{var}.png")


def _map_figure(out: Path, var: str, c: int, k: int, pred: Prediction, truth: Prediction,
                s: Samples, lat: Array, lon: Array, plev: Array) -> str:
    i = 0  # the first held-out sample
    m = s.m3[i, c, k]
    t = np.where(m, truth.f3[i, c, k], np.nan)
    p = np.where(m, pred.f3[i, c, k], np.nan)
    fig = Figure(figsize=(14, 3.4))
    axes = fig.subplots(1, 3)
    _truth_pred_error(fig, axes, lon, lat, t, p, f"{var} at {plev[k] / 100:.0f} hPa",
                      "longitude [deg E]")
    axes[0].set_ylabel("latitude [deg]")
    return _save(fig, out, f"map_{var}_{plev[k]:.0f}Pa.png")


def _rmse_by_level(out: Path, preds: dict[str, Prediction], truth: Prediction, s: Samples,
                   spec: DataSpec) -> str:
    c = spec.variables_3d.index("ta")
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    clim = preds.get("climatology", preds["unet"]).f3[0, c]
    for name, p in preds.items():
        r = field_scores(p.f3[:, c], truth.f3[:, c], s.m3[:, c], clim, spec.lat)
        assert r.per_level is not None  # a 3-D field
        ax.plot(np.asarray(r.per_level.rmse, dtype=float), spec.plev / 100, marker="o",
                label=name)
    ax.set_yscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("lat-weighted RMSE of ta [K]")
    ax.set_ylabel("pressure [hPa]")
    ax.legend()
    return _save(fig, out, "rmse_by_level_ta.png")


def _training_curves(out: Path, checkpoint: str) -> str:
    ckpt = Path(checkpoint).resolve()  # a training run's log, or an exported model's
    logs = [d / "metrics.csv" for d in (ckpt.parents[1], ckpt.parent)
            if (d / "metrics.csv").is_file()]
    if not logs:
        log.warning("no metrics.csv next to %s: the report has no training curves", checkpoint)
        return ""
    import pandas as pd

    df = pd.read_csv(logs[0])
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for col in ("train/data_epoch", "val/loss", "train/hydrostatic_epoch",
                "train/mass_continuity_epoch", "train/humidity_epoch"):
        if col in df:
            d = df[["epoch", col]].dropna()
            ax.plot(d["epoch"], d[col], marker=".", label=col)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    return _save(fig, out, "training_curves.png")


def _parity(out: Path, preds: dict[str, Prediction], truth_sc: Array, spec: DataSpec,
            substellar: float) -> str:
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, len(SCALAR_NAMES))
    series = {}
    if preds["unet"].scalars is not None:
        series["scalar model"] = preds["unet"].scalars
    for name in ("unet", "pca_gp"):
        if name in preds:
            series[f"{name} fields"] = field_scalars(preds[name].f2, spec.variables_2d,
                                                     spec.lat, spec.lon, substellar)
    for i, (ax, n, u) in enumerate(zip(axes, SCALAR_NAMES, SCALAR_UNITS, strict=True)):
        for label, vals in series.items():
            ax.scatter(truth_sc[:, i], vals[:, i], s=10, label=label, alpha=0.7)
        lo, hi = float(truth_sc[:, i].min()), float(truth_sc[:, i].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"truth [{u}]")
        ax.set_ylabel(f"predicted [{u}]")
        ax.set_title(n)
    axes[0].legend(fontsize=8)
    return _save(fig, out, "parity_scalars.png")


def calibration_figure(out: Path, uncertainty: dict[str, object]) -> str:
    """Reliability of central intervals: observed against nominal coverage, per variable
    (and scalar), with the diagonal of perfect calibration."""
    levels = np.asarray(uncertainty["coverage_levels"], dtype=float)
    rows = {**uncertainty["variables"], **uncertainty.get("scalars", {})}  # type: ignore[dict-item]
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    for name, r in rows.items():
        ax.plot(levels, r["coverage"], marker="o", ms=3, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage (lat-weighted)")
    ax.set_title(f"calibration, {uncertainty['method']}"
                 + (f" of {uncertainty['n_members']}" if uncertainty["n_members"] > 1 else ""))
    ax.legend(fontsize=7)
    return _save(fig, out, "calibration.png")
