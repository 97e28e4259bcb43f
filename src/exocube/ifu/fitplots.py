"""Figures of a fit: trace, rank and corner plots of the draws; data against the model
(Halpha moment maps, PV diagram) and the residual map. Each function returns a
``matplotlib.figure.Figure`` (no pyplot state); :func:`save` writes it as PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from exocube.ifu.cube import IFUCube
from exocube.ifu.lines import get_lines
from exocube.ifu.quicklook import _savefig, moment_maps, pv_diagram


def save(fig: Figure, path: str | Path) -> Path:
    return _savefig(fig, Path(path))


def trace_figure(draws: Mapping[str, np.ndarray]) -> Figure:
    """One row per parameter: each chain's draws against the iteration."""
    names = list(draws)
    fig = Figure(figsize=(9, 1.8 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        for c, chain in enumerate(np.asarray(draws[name])):
            ax.plot(chain, lw=0.5, alpha=0.8, label=f"chain {c}")
        ax.set_ylabel(name)
    axes[-1].set_xlabel("draw")
    axes[0].legend(fontsize=7, ncol=4, loc="upper right")
    return fig


def rank_figure(draws: Mapping[str, np.ndarray], bins: int = 20) -> Figure:
    """Histograms of each chain's ranks in the pooled draws (flat when chains agree)."""
    names = list(draws)
    fig = Figure(figsize=(9, 1.8 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        x = np.asarray(draws[name])
        ranks = np.argsort(np.argsort(x.ravel())).reshape(x.shape)
        edges = np.linspace(0, x.size, bins + 1)
        for c, r in enumerate(ranks):
            ax.stairs(np.histogram(r, edges)[0], edges, label=f"chain {c}")
        ax.axhline(x.shape[1] / bins, color="k", lw=0.6, ls="--")
        ax.set_ylabel(name)
    axes[-1].set_xlabel("rank in the pooled draws")
    return fig


def corner_figure(draws: Mapping[str, np.ndarray],
                  truth: Mapping[str, float] | None = None) -> Figure:
    """Marginal histograms on the diagonal, pairwise scatter below it."""
    names = list(draws)
    n = len(names)
    fig = Figure(figsize=(2.2 * n, 2.2 * n))
    axes = fig.subplots(n, n, squeeze=False)
    flat = {k: np.asarray(v).ravel() for k, v in draws.items()}
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(flat[xj], bins=40, histtype="step", color="k")
                if truth and xj in truth:
                    ax.axvline(truth[xj], color="C3")
            else:
                ax.plot(flat[xj], flat[yi], ",", alpha=0.3, color="k")
                if truth and xj in truth and yi in truth:
                    ax.plot(truth[xj], truth[yi], "+", color="C3", ms=10)
            if i == n - 1:
                ax.set_xlabel(xj)
            if j == 0 and i > 0:
                ax.set_ylabel(yi)
    return fig


def _image(ax, fig, data: np.ndarray, cube: IFUCube, title: str, cmap: str, lims=None) -> None:
    ext = [float(cube.x_arcsec.max()), float(cube.x_arcsec.min()),
           float(cube.y_arcsec.min()), float(cube.y_arcsec.max())]
    shown = data[:, ::-1] if cube.x_arcsec[0, 0] < cube.x_arcsec[0, -1] else data
    finite = shown[np.isfinite(shown)]
    if lims is None:
        lims = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
    im = ax.imshow(shown, origin="lower", extent=ext, cmap=cmap, vmin=lims[0], vmax=lims[1])
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)


def data_model_figure(data: IFUCube, model: IFUCube, residual_chi: np.ndarray, z: float,
                      line: str = "Halpha", half_width_kms: float = 500.0,
                      pa_deg: float = 0.0, centre: tuple[float, float] = (0.0, 0.0)) -> Figure:
    """Moment-0/1 maps of data (continuum subtracted) and model, the residual map, and
    PV diagrams of both along ``pa_deg`` through ``centre``."""
    (ln,) = get_lines([line])
    md = moment_maps(data, ln, z, half_width_kms=half_width_kms)
    mm = moment_maps(model, ln, z, half_width_kms=half_width_kms)
    fig = Figure(figsize=(14, 8))
    ax = fig.subplots(2, 4)
    flim = np.nanpercentile(md.flux, [2, 98]) if np.isfinite(md.flux).any() else None
    vel = mm.velocity[np.isfinite(mm.velocity)]  # the model's range: data moments are noisy
    vlim = (vel.min() - 50.0, vel.max() + 50.0) if vel.size else None
    _image(ax[0, 0], fig, md.flux, data, f"data {line} flux", "magma", flim)
    _image(ax[0, 1], fig, mm.flux, data, f"model {line} flux", "magma", flim)
    _image(ax[1, 0], fig, md.velocity, data, "data velocity (km/s)", "RdBu_r", vlim)
    _image(ax[1, 1], fig, mm.velocity, data, "model velocity (km/s)", "RdBu_r", vlim)
    _image(ax[0, 2], fig, residual_chi, data, "residual: rms (data - model) / err", "viridis")
    for k, (cube, title) in enumerate(((data, "data"), (model, "model"))):
        pv = pv_diagram(cube, ln, z, pa_deg=pa_deg, centre_arcsec=centre,
                        half_width_kms=half_width_kms)
        a = ax[1, 2 + k]
        ext = [float(pv.offset_arcsec[0]), float(pv.offset_arcsec[-1]),
               float(pv.velocity_kms[0]), float(pv.velocity_kms[-1])]
        im = a.imshow(pv.data, origin="lower", aspect="auto", extent=ext, cmap="magma")
        a.set_title(f"{title} PV, PA {pa_deg:.0f} deg", fontsize=9)
        a.set_xlabel("offset (arcsec)")
        a.set_ylabel("velocity (km/s)")
        fig.colorbar(im, ax=a, shrink=0.8)
    ax[0, 3].set_axis_off()
    return fig
