"""Score a trained surrogate on its held-out runs, next to the baselines and the truth.

For every model (the U-Net and each baseline, fitted on the checkpoint's own
training runs) and every variable and level: latitude-weighted RMSE, bias and
anomaly correlation (anomalies from the training climatology). Physics
residuals are computed for each model's prediction and for the ground truth
with the same code as the training losses:

- ``hydrostatic_rel_rms``: RMS of the relative hypsometric residual per layer;
- ``humidity_violation_rms`` [kg/kg] and ``humidity_violation_fraction``: how
  far and how often ``hus`` leaves ``[0, q_sat(ta, p)]``;
- ``mass_divergence_rms`` [kg m-2 s-1]: area-weighted RMS of the column mass
  flux divergence (with each planet's radius and gravity).

All scores use the truth's below-ground mask. Scalar diagnostics (global-mean
surface temperature, day-night contrast, habitable fraction) are scored for
the scalar model and as derived from each model's surface fields.

Output: ``metrics.json``, ``report.md`` and PNG figures in one directory.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from numpy.typing import NDArray

from exocube.errors import StoreError
from exocube.ml import losses
from exocube.ml.baselines import Samples, collect, make_baselines
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.scalar import (
    SCALAR_NAMES,
    SCALAR_UNITS,
    denormalise_scalars,
    scalar_diagnostics,
)
from exocube.ml.task import SurrogateTask
from exocube.params import MODEL_INPUT_NAMES_V1
from exocube.physics import R_EARTH

log = logging.getLogger(__name__)

Array = NDArray[np.float64]


@dataclass
class EvaluationResult:
    json_path: Path
    report_path: Path
    summary: dict[str, dict[str, float]]
    metrics: dict[str, Any]


@dataclass
class Prediction:
    """Physical fields of one model on the evaluation samples."""

    f3: Array  # (N, C3, L, H, W)
    f2: Array  # (N, C2, H, W)
    scalars: Array | None = None  # (N, 3) from a scalar model


# -- loading ----------------------------------------------------------------------------------
def check_grid(spec: dict[str, Any], store_spec: dict[str, Any], store: str) -> None:
    """Refuse a store whose grid differs from the checkpoint's."""
    for axis in ("plev", "lat", "lon"):
        a, b = np.asarray(spec[axis]), np.asarray(store_spec[axis])
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-6):
            raise StoreError(
                f"the checkpoint was trained on a {spec['shape']} (plev, lat, lon) grid but "
                f"{store} has {store_spec['shape']} ({axis} differs); evaluate on a store with "
                "the training grid, or retrain on this one")


def datamodule_for(model: SurrogateTask, store: str, version: str | None,
                   database_url: str | None) -> CubeDataModule:
    """A datamodule over ``store`` with the checkpoint's variables, selection and split."""
    spec = model.hparams.data_spec
    sel = spec.get("selection", {})
    variables = spec["variables_3d"] + spec["variables_2d"]
    probe = CubeDataModule(store, version, variables=variables, split={"train": []},
                           **{k: sel.get(k) for k in ("levels", "lat_range", "lon_range")})
    ds = probe.store.isel(probe._indexers(probe.store))
    check_grid(spec, {"plev": ds["plev"].values, "lat": ds["lat"].values,
                      "lon": ds["lon"].values,
                      "shape": [ds.sizes["plev"], ds.sizes["lat"], ds.sizes["lon"]]}, store)
    return CubeDataModule(store, version, variables=variables, window=spec["window"],
                          split=spec["split"], database_url=database_url,
                          **{k: sel.get(k) for k in ("levels", "lat_range", "lon_range")})


def truth_of(s: Samples, ds: Any) -> Prediction:
    """Physical truth (NaN-free; use the masks) from normalised samples."""
    return Prediction(s.x3 * ds.std3 + ds.mean3, s.x2 * ds.std2 + ds.mean2)


@torch.no_grad()
def predict_model(model: SurrogateTask, s: Samples, batch: int = 8) -> Prediction:
    model.eval()
    f3, f2, sc = [], [], []
    for i in range(0, len(s.params), batch):
        p = torch.tensor(s.params[i:i + batch], dtype=torch.float32)
        z3, z2, zs = model(p, torch.tensor(s.locked[i:i + batch]))
        f3.append(model.normaliser.denorm3(z3).double().numpy())
        f2.append(model.normaliser.denorm2(z2).double().numpy() if z2 is not None
                  else np.zeros((len(p), 0, *s.x2.shape[2:])))
        if zs is not None:
            sc.append(denormalise_scalars(zs).double().numpy())
    return Prediction(np.concatenate(f3), np.concatenate(f2),
                      np.concatenate(sc) if sc else None)


# -- metrics ----------------------------------------------------------------------------------
def lat_weights(lat: Array) -> Array:
    w = np.cos(np.deg2rad(lat))
    return w / w.mean()


def field_scores(pred: Array, truth: Array, mask: NDArray[np.bool_], clim: Array,
                 lat: Array) -> dict[str, Any]:
    """Per-level (and overall) lat-weighted RMSE, bias and anomaly correlation.

    ``pred``, ``truth``, ``mask`` are ``(N, [L,] H, W)``; ``clim`` the training mean.
    """
    three_d = pred.ndim == 4
    if not three_d:
        pred, truth, mask, clim = pred[:, None], truth[:, None], mask[:, None], clim[None]
    w = lat_weights(lat).reshape(1, 1, -1, 1) * mask
    axes = (0, 2, 3)
    wsum = np.maximum(w.sum(axes), 1e-300)
    err = np.where(mask, pred - truth, 0.0)
    pa, ta = np.where(mask, pred - clim, 0.0), np.where(mask, truth - clim, 0.0)
    cov = (w * pa * ta).sum(axes)
    denom = np.sqrt((w * pa**2).sum(axes) * (w * ta**2).sum(axes))
    empty = w.sum(axes) == 0
    out = {
        "rmse": np.where(empty, np.nan, np.sqrt((w * err**2).sum(axes) / wsum)),
        "bias": np.where(empty, np.nan, (w * err).sum(axes) / wsum),
        "acc": np.where(empty | (denom == 0), np.nan, cov / np.where(denom == 0, 1, denom)),
    }
    overall = math.sqrt(float((w * err**2).sum() / max(w.sum(), 1e-300)))
    result: dict[str, Any] = {"rmse": overall,
                              "bias": float((w * err).sum() / max(w.sum(), 1e-300))}
    if three_d:
        result["per_level"] = {k: [None if not np.isfinite(x) else float(x) for x in v]
                               for k, v in out.items()}
    else:
        result["acc"] = float(out["acc"][0])
    return result


def physics_residuals(f3: Array, m3: NDArray[np.bool_], v3: list[str], plev: Array, lat: Array,
                      params: Array, gravity: Array, r_gas: Array) -> dict[str, float]:
    """The physics residuals of physical 3-D fields (a prediction or the truth)."""
    t = {v: torch.tensor(f3[:, i], dtype=torch.float64) for i, v in enumerate(v3)}
    valid = torch.tensor(m3.all(axis=1))
    p = torch.tensor(plev, dtype=torch.float64)
    g = torch.tensor(gravity, dtype=torch.float64)
    out: dict[str, float] = {}
    if {"ta", "hus", "zg"} <= set(t):
        r, lv = losses.hydrostatic_residual(t["ta"], t["hus"], t["zg"], p, g, valid,
                                            torch.tensor(r_gas, dtype=torch.float64))
        out["hydrostatic_rel_rms"] = float(torch.sqrt((r**2).sum() / lv.sum().clamp_min(1)))
    if {"ta", "hus"} <= set(t):
        ta = torch.where(valid, t["ta"], torch.full_like(t["ta"], 250.0))
        viol = losses.humidity_violation(t["hus"], ta, p)[valid]
        out["humidity_violation_rms"] = float(torch.sqrt((viol**2).mean()))
        out["humidity_violation_fraction"] = float((viol > 0).double().mean())
    if {"ua", "va"} <= set(t):
        radius = torch.tensor(params[:, MODEL_INPUT_NAMES_V1.index("radius_earth")] * R_EARTH)
        div = losses.column_mass_divergence(t["ua"], t["va"], valid, p,
                                            torch.tensor(lat, dtype=torch.float64), radius, g)
        w = torch.tensor(lat_weights(lat)).reshape(1, -1, 1)
        out["mass_divergence_rms"] = float(torch.sqrt((div**2 * w).mean()))
    return out


def field_scalars(f2: Array, v2: list[str], lat: Array, lon: Array,
                  substellar: float) -> Array | None:
    if not {"ts", "ps"} <= set(v2):
        return None
    ts = torch.tensor(f2[:, v2.index("ts")])
    ps = torch.tensor(f2[:, v2.index("ps")])
    return scalar_diagnostics(ts, ps, torch.tensor(lat), torch.tensor(lon), substellar).numpy()


def scalar_scores(pred: Array, truth: Array) -> dict[str, dict[str, float]]:
    return {n: {"rmse": float(np.sqrt(np.mean((pred[:, i] - truth[:, i]) ** 2))),
                "bias": float(np.mean(pred[:, i] - truth[:, i]))}
            for i, n in enumerate(SCALAR_NAMES)}


def score_model(pred: Prediction, truth: Prediction, s: Samples, clim: Prediction,
                spec: dict[str, Any], substellar: float, truth_scalars: Array | None
                ) -> dict[str, Any]:
    lat, lon, plev = (np.asarray(spec[k]) for k in ("lat", "lon", "plev"))
    v3, v2 = spec["variables_3d"], spec["variables_2d"]
    fields = {v: field_scores(pred.f3[:, i], truth.f3[:, i], s.m3[:, i], clim.f3[0, i], lat)
              for i, v in enumerate(v3)}
    fields.update({v: field_scores(pred.f2[:, i], truth.f2[:, i], s.m2[:, i], clim.f2[0, i], lat)
                   for i, v in enumerate(v2)})
    out: dict[str, Any] = {"fields": fields, "physics": physics_residuals(
        pred.f3, s.m3, v3, plev, lat, s.params, s.gravity, s.r_gas)}
    if truth_scalars is not None:
        derived = field_scalars(pred.f2, v2, lat, lon, substellar)
        out["scalars_from_fields"] = scalar_scores(derived, truth_scalars)
        if pred.scalars is not None:
            out["scalars"] = scalar_scores(pred.scalars, truth_scalars)
    return out


# -- the whole evaluation ---------------------------------------------------------------------
def evaluate_checkpoint(checkpoint: str, store: str, *, version: str | None = None,
                        out_dir: Path = Path("evaluation"), map_levels: list[float] | None = None,
                        with_baselines: bool = True, split: str = "test",
                        database_url: str | None = None) -> EvaluationResult:
    """Score ``checkpoint`` on ``split`` runs of ``store``; write JSON, figures and report."""
    model = SurrogateTask.load_from_checkpoint(checkpoint, map_location="cpu")
    spec = model.hparams.data_spec
    dm = datamodule_for(model, store, version, database_url)
    test_ds, train_ds = dm.make_dataset(split), dm.make_dataset("train")
    s, train = collect(test_ds), collect(train_ds)
    truth = truth_of(s, test_ds)
    preds: dict[str, Prediction] = {"unet": predict_model(model, s)}
    baselines = make_baselines() if with_baselines else make_baselines()[:1]
    clim_pred = None
    for b in baselines:
        log.info("fitting baseline %s on %d training samples", b.name, len(train.params))
        x3, x2 = s.unflat(b.fit(train).predict(s.features))
        p = truth_of(Samples(x3, s.m3, x2, s.m2, s.params, s.locked, s.gravity, s.run_index,
                             s.r_gas), test_ds)
        if b.name == "climatology":
            clim_pred = p
        if with_baselines or b.name == "climatology":
            preds[b.name] = p
    substellar = float(model.hparams.substellar_lon_deg)
    lat, lon = np.asarray(spec["lat"]), np.asarray(spec["lon"])
    truth_sc = field_scalars(truth.f2, spec["variables_2d"], lat, lon, substellar)
    metrics: dict[str, Any] = {
        "checkpoint": str(checkpoint), "store": store, "version": dm.spec["version"],
        "trained_on_version": spec["version"], "split": split,
        "n_runs": len(spec["split"][split]), "n_samples": len(s.params),
        "n_train_runs": len(spec["split"]["train"]),
        "truth": {"physics": physics_residuals(truth.f3, s.m3, spec["variables_3d"],
                                               np.asarray(spec["plev"]), lat, s.params,
                                               s.gravity, s.r_gas)},
        "models": {name: score_model(p, truth, s, clim_pred, spec, substellar, truth_sc)
                   for name, p in preds.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = make_figures(out_dir, preds, truth, s, spec, map_levels or [], checkpoint,
                           truth_sc, substellar)
    json_path = _write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1))
    report_path = _write_atomic(out_dir / "report.md", render_report(metrics, figures))
    summary = {n: {"rmse_ta": m["fields"]["ta"]["rmse"]} for n, m in metrics["models"].items()
               if "ta" in m["fields"]}
    return EvaluationResult(json_path, report_path, summary, metrics)


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


# -- figures and report -----------------------------------------------------------------------
def make_figures(out: Path, preds: dict[str, Prediction], truth: Prediction, s: Samples,
                 spec: dict[str, Any], map_levels: list[float], checkpoint: str,
                 truth_sc: Array | None, substellar: float) -> dict[str, str]:
    figs: dict[str, str] = {}
    v3 = spec["variables_3d"]
    plev, lat, lon = (np.asarray(spec[k]) for k in ("plev", "lat", "lon"))
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


def _zonal_mean(f: Array, m: NDArray[np.bool_]) -> Array:
    """Mean over samples and longitude of valid points, NaN where none: (L, H)."""
    cnt = m.sum(axis=(0, 3))
    return np.where(cnt > 0, np.where(m, f, 0).sum(axis=(0, 3)) / np.maximum(cnt, 1), np.nan)


def _zonal_mean_figure(out: Path, var: str, c: int, pred: Prediction, truth: Prediction,
                       s: Samples, plev: Array, lat: Array) -> str:
    t = _zonal_mean(truth.f3[:, c], s.m3[:, c])
    p = _zonal_mean(pred.f3[:, c], s.m3[:, c])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    lim = (np.nanmin(t), np.nanmax(t))
    err = p - t
    elim = max(float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 1.0, 1e-12)
    for ax, data, title, kw in (
            (axes[0], t, "truth", {"vmin": lim[0], "vmax": lim[1], "cmap": "viridis"}),
            (axes[1], p, "U-Net", {"vmin": lim[0], "vmax": lim[1], "cmap": "viridis"}),
            (axes[2], err, "U-Net - truth", {"vmin": -elim, "vmax": elim, "cmap": "RdBu_r"})):
        im = ax.pcolormesh(lat, plev / 100, data, shading="nearest", **kw)
        ax.set_title(f"{var} zonal mean, {title}")
        ax.set_xlabel("latitude [deg]")
        fig.colorbar(im, ax=ax)
    axes[0].set_yscale("log")
    axes[0].invert_yaxis()
    axes[0].set_ylabel("pressure [hPa]")
    name = f"zonal_mean_{var}.png"
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _map_figure(out: Path, var: str, c: int, k: int, pred: Prediction, truth: Prediction,
                s: Samples, lat: Array, lon: Array, plev: Array) -> str:
    i = 0  # the first held-out sample
    m = s.m3[i, c, k]
    t = np.where(m, truth.f3[i, c, k], np.nan)
    p = np.where(m, pred.f3[i, c, k], np.nan)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
    finite = np.isfinite(t)
    lim = (np.nanmin(t), np.nanmax(t)) if finite.any() else (0, 1)
    err = p - t
    elim = max(float(np.nanmax(np.abs(err))) if finite.any() else 1.0, 1e-12)
    for ax, data, title, kw in (
            (axes[0], t, "truth", {"vmin": lim[0], "vmax": lim[1], "cmap": "viridis"}),
            (axes[1], p, "U-Net", {"vmin": lim[0], "vmax": lim[1], "cmap": "viridis"}),
            (axes[2], err, "U-Net - truth", {"vmin": -elim, "vmax": elim, "cmap": "RdBu_r"})):
        im = ax.pcolormesh(lon, lat, data, shading="nearest", **kw)
        ax.set_title(f"{var} at {plev[k] / 100:.0f} hPa, {title}")
        ax.set_xlabel("longitude [deg E]")
        fig.colorbar(im, ax=ax)
    axes[0].set_ylabel("latitude [deg]")
    name = f"map_{var}_{plev[k]:.0f}Pa.png"
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _rmse_by_level(out: Path, preds: dict[str, Prediction], truth: Prediction, s: Samples,
                   spec: dict[str, Any]) -> str:
    c = spec["variables_3d"].index("ta")
    lat, plev = np.asarray(spec["lat"]), np.asarray(spec["plev"])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    clim = preds.get("climatology", preds["unet"]).f3[0, c]
    for name, p in preds.items():
        r = field_scores(p.f3[:, c], truth.f3[:, c], s.m3[:, c], clim, lat)
        ax.plot(np.asarray(r["per_level"]["rmse"], dtype=float), plev / 100, marker="o",
                label=name)
    ax.set_yscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("lat-weighted RMSE of ta [K]")
    ax.set_ylabel("pressure [hPa]")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rmse_by_level_ta.png", dpi=90)
    plt.close(fig)
    return "rmse_by_level_ta.png"


def _training_curves(out: Path, checkpoint: str) -> str:
    logs = list(Path(checkpoint).resolve().parents[1].glob("metrics.csv"))
    if not logs:
        log.warning("no metrics.csv next to %s: the report has no training curves", checkpoint)
        return ""
    import pandas as pd

    df = pd.read_csv(logs[0])
    fig, ax = plt.subplots(figsize=(6, 4))
    for col in ("train/data_epoch", "val/loss", "train/hydrostatic_epoch",
                "train/mass_continuity_epoch", "train/humidity_epoch"):
        if col in df:
            d = df[["epoch", col]].dropna()
            ax.plot(d["epoch"], d[col], marker=".", label=col)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=90)
    plt.close(fig)
    return "training_curves.png"


def _parity(out: Path, preds: dict[str, Prediction], truth_sc: Array, spec: dict[str, Any],
            substellar: float) -> str:
    lat, lon = np.asarray(spec["lat"]), np.asarray(spec["lon"])
    fig, axes = plt.subplots(1, len(SCALAR_NAMES), figsize=(13, 4))
    series = {}
    if preds["unet"].scalars is not None:
        series["scalar model"] = preds["unet"].scalars
    for name in ("unet", "pca_gp"):
        if name in preds:
            series[f"{name} fields"] = field_scalars(preds[name].f2, spec["variables_2d"], lat,
                                                     lon, substellar)
    for i, (ax, n, u) in enumerate(zip(axes, SCALAR_NAMES, SCALAR_UNITS, strict=True)):
        for label, vals in series.items():
            ax.scatter(truth_sc[:, i], vals[:, i], s=10, label=label, alpha=0.7)
        lo, hi = float(truth_sc[:, i].min()), float(truth_sc[:, i].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"truth [{u}]")
        ax.set_ylabel(f"predicted [{u}]")
        ax.set_title(n)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "parity_scalars.png", dpi=90)
    plt.close(fig)
    return "parity_scalars.png"


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.4g}"


def render_report(m: dict[str, Any], figures: dict[str, str]) -> str:
    models = list(m["models"])
    variables = list(m["models"]["unet"]["fields"])
    lines = [
        "# Surrogate evaluation", "",
        f"- checkpoint: `{m['checkpoint']}`",
        f"- store: `{m['store']}` version `{m['version']}`",
        f"- trained on version `{m['trained_on_version']}`",
        f"- split: {m['split']}, {m['n_runs']} runs, {m['n_samples']} samples; "
        f"baselines fitted on the same {m['n_train_runs']} training runs", "",
        "## Latitude-weighted RMSE over all valid points", "",
        "| model | " + " | ".join(variables) + " |",
        "|---|" + "---|" * len(variables),
    ]
    for name in models:
        f = m["models"][name]["fields"]
        lines.append(f"| {name} | " + " | ".join(_fmt(f[v]["rmse"]) for v in variables) + " |")
    lines += ["", "## Physics residuals (predictions and truth)", ""]
    keys = list(m["truth"]["physics"])
    lines += ["| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines.append("| truth | " + " | ".join(_fmt(m["truth"]["physics"][k]) for k in keys) + " |")
    for name in models:
        ph = m["models"][name]["physics"]
        lines.append(f"| {name} | " + " | ".join(_fmt(ph.get(k)) for k in keys) + " |")
    if "scalars_from_fields" in m["models"]["unet"]:
        lines += ["", "## Scalar diagnostics, RMSE", "",
                  "| model | " + " | ".join(SCALAR_NAMES) + " |",
                  "|---|" + "---|" * len(SCALAR_NAMES)]
        if "scalars" in m["models"]["unet"]:
            sc = m["models"]["unet"]["scalars"]
            lines.append("| scalar model | " + " | ".join(_fmt(sc[n]["rmse"])
                                                         for n in SCALAR_NAMES) + " |")
        for name in models:
            sc = m["models"][name]["scalars_from_fields"]
            lines.append(f"| {name} (from fields) | " + " | ".join(
                _fmt(sc[n]["rmse"]) for n in SCALAR_NAMES) + " |")
    lines += ["", "## Per-level scores of ta", "",
              "| model | level | RMSE [K] | bias [K] | ACC |", "|---|---|---|---|---|"]
    for name in models:
        pl = m["models"][name]["fields"].get("ta", {}).get("per_level")
        if pl:
            for i in range(len(pl["rmse"])):
                lines.append(f"| {name} | {i} | {_fmt(pl['rmse'][i])} | {_fmt(pl['bias'][i])} "
                             f"| {_fmt(pl['acc'][i])} |")
    lines += ["", "## Figures", ""]
    lines += [f"![{k}]({v})" for k, v in figures.items()]
    return "\n".join(lines) + "\n"
