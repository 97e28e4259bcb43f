"""Score a trained surrogate on its held-out runs, next to the baselines and the truth.

For every model (the U-Net and each baseline, fitted on the checkpoint's own
training runs) the scores of :mod:`exocube.ml.scores` (fields per variable and
level, physics residuals, scalar diagnostics), the per-run and probabilistic
metrics of :mod:`exocube.ml.field_metrics`, the figures of
:mod:`exocube.ml.figures`, and the report written here.

``checkpoint`` may be an ensemble manifest (:mod:`exocube.ml.ensemble`): then
``unet`` is the ensemble mean, ``unet_member_0`` its first member alone, and the
ensemble's calibration (spread-skill, CRPS, interval coverage, a calibration
plot) is added, with the manifest's ``std_scale`` applied (fitted on the
validation runs by :func:`fit_spread_scale`).

Output: ``metrics.json``, ``report.md`` and PNG figures in one directory.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from exocube.errors import StoreError
from exocube.ml.baselines import Samples, collect, make_baselines
from exocube.ml.datamodule import CubeDataModule, RunWindowDataset
from exocube.ml.ensemble import (
    STD_HEAD,
    is_manifest,
    load_members,
    read_manifest,
    scale_spread,
)
from exocube.ml.field_metrics import field_metrics, uncertainty_metrics
from exocube.ml.figures import calibration_figure, make_figures
from exocube.ml.scalar import SCALAR_NAMES, denormalise_scalars
from exocube.ml.scores import (
    Array,
    Prediction,
    Scores,
    field_scalars,
    field_scores,
    sample_physics,
    score_model,
)
from exocube.ml.spec import DataSpec
from exocube.ml.stacked import StackedMembers
from exocube.ml.task import SurrogateTask, load_task

log = logging.getLogger(__name__)

__all__ = ["EvaluationResult", "evaluate_checkpoint", "field_scores", "render_report"]


@dataclass
class EvaluationResult:
    json_path: Path
    report_path: Path
    summary: dict[str, dict[str, float]]
    metrics: dict[str, Any]
    scores: Scores


# -- loading ----------------------------------------------------------------------------------
def datamodule_for(spec: DataSpec, store: str, version: str | None,
                   database_url: str | None) -> CubeDataModule:
    """A datamodule over ``store`` with the checkpoint's variables, selection and split;
    refuses a store whose (selected) grid differs from the checkpoint's."""
    dm = CubeDataModule.for_spec(spec, store, version, database_url)
    grid = dm.grid()
    if not grid.matches(spec.grid):
        raise StoreError(
            f"the checkpoint was trained on a {list(spec.shape)} (plev, lat, lon) grid but "
            f"{store} has {list(grid.shape)}; evaluate on a store with the training grid, or "
            "retrain on this one")
    return dm


def truth_of(s: Samples, ds: RunWindowDataset) -> Prediction:
    """Physical truth (NaN-free; use the masks) from normalised samples."""
    return Prediction(s.x3 * ds.std3 + ds.mean3, s.x2 * ds.std2 + ds.mean2)


@torch.no_grad()
def predict_members(tasks: Sequence[SurrogateTask], s: Samples, batch: int = 8
                    ) -> list[Prediction]:
    """Each model's prediction of the samples ``s``: one model's alone (with its predicted
    std if it has a std head), an ensemble's members in one stacked pass
    (:class:`~exocube.ml.stacked.StackedMembers`) per ``batch // N`` samples."""
    for task in tasks:
        task.eval()
    physical = (StackedMembers(tasks).physical if len(tasks) > 1
                else _one_member(tasks[0]))
    step = max(1, batch // len(tasks))
    f3, f2, sc, stds = [], [], [], []
    for i in range(0, len(s.params), step):
        p = torch.tensor(s.params[i:i + step], dtype=torch.float32)
        g = torch.tensor(s.gravity[i:i + step], dtype=torch.float64)
        r = torch.tensor(s.r_gas[i:i + step], dtype=torch.float64)
        x3, x2, zs, *std = physical(p, torch.tensor(s.locked[i:i + step]), g, r)
        f3.append(x3.double().numpy())
        f2.append(x2.double().numpy() if x2 is not None
                  else np.zeros((len(tasks), len(p), 0, *s.x2.shape[2:])))
        if zs is not None:
            sc.append(denormalise_scalars(zs).double().numpy())
        if std:
            stds.append([None if t is None else t[0].double().numpy() for t in std])
    x3s, x2s = np.concatenate(f3, axis=1), np.concatenate(f2, axis=1)
    scs = np.concatenate(sc, axis=1) if sc else None
    preds = [Prediction(x3s[k], x2s[k], scs[k] if scs is not None else None)
             for k in range(len(tasks))]
    if stds:
        s3, s2, ss = (None if parts[0] is None else np.concatenate(parts)
                      for parts in zip(*stds, strict=True))
        preds[0] = replace(preds[0], std3=s3,
                           std2=s2 if s2 is not None else np.zeros_like(x2s[0]),
                           scalars_std=ss if scs is not None else None)
    return preds


def _one_member(task: SurrogateTask) -> Callable[..., tuple[Tensor | None, ...]]:
    """``task.physical`` with a leading member axis of length 1 on its outputs, followed
    by the std head's physical stds when it has one."""
    def physical(*args: Tensor | None) -> tuple[Tensor | None, ...]:
        phys, std = task.physical_with_std(*args)  # type: ignore[arg-type]
        return tuple(None if x is None else x.unsqueeze(0) for x in (*phys, *(std or ())))
    return physical


def ensemble_mean(members: Sequence[Prediction]) -> Prediction:
    """The members' mean prediction."""
    scalars = ([m.scalars for m in members] if all(m.scalars is not None for m in members)
               else None)
    return Prediction(np.mean([m.f3 for m in members], axis=0),
                      np.mean([m.f2 for m in members], axis=0),
                      np.mean(scalars, axis=0) if scalars is not None else None)


def load_models(checkpoint: str) -> tuple[list[SurrogateTask], dict[str, float]]:
    """The checkpoint's model, or every member of an ensemble manifest and its
    ``std_scale``."""
    if is_manifest(checkpoint):
        manifest = read_manifest(checkpoint)
        return load_members(manifest), manifest.std_scale
    return [load_task(checkpoint)], {}


def with_spread_scale(members: Sequence[Prediction], scale: dict[str, float],
                      spec: DataSpec) -> list[Prediction]:
    """The members with each variable's (and scalar's) spread times ``scale`` (default 1);
    a Gaussian predictive's std times ``scale``."""
    if not scale:
        return list(members)
    if len(members) == 1 and members[0].gaussian:
        return [_scaled_std(members[0], scale, spec)]
    def scaled(arrays: list[Array], names: Sequence[str], axis: int) -> Array:
        stack = np.stack(arrays)
        for i, n in enumerate(names):
            idx = (slice(None),) * (axis + 1) + (i,)
            stack[idx] = scale_spread(stack[idx], scale.get(n, 1.0))
        return stack
    f3 = scaled([m.f3 for m in members], spec.variables_3d, 1)
    f2 = scaled([m.f2 for m in members], spec.variables_2d, 1)
    sc = (scaled([m.scalars for m in members], SCALAR_NAMES, 1)  # type: ignore[misc]
          if all(m.scalars is not None for m in members) else None)
    return [Prediction(f3[i], f2[i], sc[i] if sc is not None else None)
            for i in range(len(members))]


def _scaled_std(p: Prediction, scale: dict[str, float], spec: DataSpec) -> Prediction:
    """A Gaussian predictive with each variable's (and scalar's) std times ``scale``."""
    def times(std: Array | None, names: Sequence[str]) -> Array | None:
        if std is None:
            return None
        factors = np.array([scale.get(n, 1.0) for n in names], dtype=np.float64)
        return std * factors.reshape(1, -1, *(1,) * (std.ndim - 2))
    return replace(p, std3=times(p.std3, spec.variables_3d),
                   std2=times(p.std2, spec.variables_2d),
                   scalars_std=times(p.scalars_std, SCALAR_NAMES))


def fit_spread_scale(tasks: Sequence[SurrogateTask], store: str, database_url: str | None,
                     split: str = "val") -> dict[str, float]:
    """Per variable and scalar, the factor that makes the members' spread-skill ratio 1 on
    ``split`` (the validation runs by default): RMSE of the mean / predictive spread."""
    spec = tasks[0].spec
    dm = datamodule_for(spec, store, spec.version, database_url)
    ds = dm.make_dataset(split)
    s = collect(ds)
    truth = truth_of(s, ds)
    members = predict_members(tasks, s)
    truth_sc = field_scalars(truth.f2, spec.variables_2d, spec.lat, spec.lon,
                             float(tasks[0].hparams.substellar_lon_deg))
    u = uncertainty_metrics(members, truth, s, spec, truth_sc)
    scale = {}
    for name, row in {**u["variables"], **u.get("scalars", {})}.items():
        ratio = row["spread_skill"]
        if math.isfinite(ratio) and ratio > 0:
            scale[name] = 1.0 / ratio
    log.info("spread scale fitted on %d %s runs: %s", len(spec.split.runs(split)), split,
             {k: round(v, 3) for k, v in scale.items()})
    return scale


def baseline_predictions(s: Samples, train: Samples, test_ds: RunWindowDataset,
                         with_baselines: bool) -> tuple[dict[str, Prediction], Prediction]:
    """Each baseline's prediction (only the climatology without ``with_baselines``), and
    the climatology's (the anomaly reference)."""
    baselines = make_baselines() if with_baselines else make_baselines()[:1]
    preds: dict[str, Prediction] = {}
    for b in baselines:
        log.info("fitting baseline %s on %d training samples", b.name, len(train.params))
        x3, x2 = s.unflat(b.fit(train).predict(s.features))
        preds[b.name] = truth_of(Samples(x3, s.m3, x2, s.m2, s.params, s.locked, s.gravity,
                                         s.run_index, s.r_gas, s.scales), test_ds)
    return preds, preds["climatology"]


# -- the whole evaluation ---------------------------------------------------------------------
def evaluate_checkpoint(checkpoint: str, store: str, *, version: str | None = None,
                        out_dir: Path = Path("evaluation"), map_levels: list[float] | None = None,
                        with_baselines: bool = True, split: str = "test",
                        database_url: str | None = None) -> EvaluationResult:
    """Score ``checkpoint`` on ``split`` runs of ``store``; write JSON, figures and report."""
    tasks, std_scale = load_models(checkpoint)
    model = tasks[0]
    spec = model.spec
    dm = datamodule_for(spec, store, version, database_url)
    test_ds, train_ds = dm.make_dataset(split), dm.make_dataset("train")
    s, train = collect(test_ds), collect(train_ds)
    truth = truth_of(s, test_ds)
    baselines, clim = baseline_predictions(s, train, test_ds, with_baselines)
    networks = predict_members(tasks, s)
    members = with_spread_scale(networks, std_scale, spec)  # the same mean
    ensemble = len(members) > 1
    unet = {"unet": ensemble_mean(members), "unet_member_0": networks[0]} if ensemble else {
        "unet": members[0]}
    probabilistic = ensemble or members[0].gaussian
    preds = {**unet, **baselines}
    substellar = float(model.hparams.substellar_lon_deg)
    truth_sc = field_scalars(truth.f2, spec.variables_2d, spec.lat, spec.lon, substellar)
    metrics_by_model = {name: field_metrics([p], truth, s, clim, spec)
                        for name, p in preds.items()}
    metrics_by_model["unet"] = field_metrics(members, truth, s, clim, spec)
    scores = Scores(
        checkpoint=str(checkpoint), store=store, version=dm.spec.version,
        trained_on_version=spec.version, split=split, n_runs=len(spec.split.runs(split)),
        n_samples=len(s.params), n_train_runs=len(spec.split.train),
        truth_physics=sample_physics(truth.f3, s, spec),
        models={name: score_model(p, truth, s, clim, spec, substellar, truth_sc)
                for name, p in preds.items()},
        field_metrics=metrics_by_model,
        uncertainty=uncertainty_metrics(members, truth, s, spec, truth_sc)
        if probabilistic else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = make_figures(out_dir, preds, truth, s, spec, map_levels or [],
                           _first_checkpoint(checkpoint), truth_sc, substellar)
    if scores.uncertainty is not None:
        figures["calibration"] = calibration_figure(out_dir, scores.uncertainty)
    return write_report(out_dir, scores, figures)


def _first_checkpoint(checkpoint: str) -> str:
    """The checkpoint whose training log the report shows (an ensemble's first member)."""
    return read_manifest(checkpoint).members[0].checkpoint if is_manifest(
        checkpoint) else checkpoint


# -- the report -------------------------------------------------------------------------------
def write_report(out_dir: Path, scores: Scores, figures: dict[str, str]) -> EvaluationResult:
    """``metrics.json`` and ``report.md`` in ``out_dir`` (the figures are already there)."""
    metrics = scores.as_dict()
    json_path = _write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=1))
    report_path = _write_atomic(out_dir / "report.md", render_report(scores, figures))
    return EvaluationResult(json_path, report_path, scores.summary(), metrics, scores)


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.4g}"


def render_report(scores: Scores, figures: dict[str, str]) -> str:
    """The markdown report of ``scores``, linking ``figures`` (names to file names)."""
    models = scores.models
    unet = models["unet"]
    variables = list(unet.fields)
    lines = [
        "# Surrogate evaluation", "",
        f"- checkpoint: `{scores.checkpoint}`",
        f"- store: `{scores.store}` version `{scores.version}`",
        f"- trained on version `{scores.trained_on_version}`",
        f"- split: {scores.split}, {scores.n_runs} runs, {scores.n_samples} samples; "
        f"baselines fitted on the same {scores.n_train_runs} training runs", "",
        "## Latitude-weighted RMSE over all valid points", "",
        *_table("model", variables),
    ]
    for name, m in models.items():
        lines.append(_row(name, [m.fields[v].rmse for v in variables]))
    lines += ["", "## Physics residuals (predictions and truth)", ""]
    keys = list(scores.truth_physics)
    lines += [*_table("", keys), _row("truth", [scores.truth_physics[k] for k in keys])]
    lines += [_row(name, [m.physics.get(k) for k in keys]) for name, m in models.items()]
    if unet.scalars_from_fields is not None:
        lines += ["", "## Scalar diagnostics, RMSE", "", *_table("model", SCALAR_NAMES)]
        if unet.scalars is not None:
            lines.append(_row("scalar model", [unet.scalars[n].rmse for n in SCALAR_NAMES]))
        for name, m in models.items():
            sc = m.scalars_from_fields or {}
            lines.append(_row(f"{name} (from fields)", [sc[n].rmse for n in SCALAR_NAMES]))
    lines += ["", "## Per-level scores of ta", "",
              "| model | level | RMSE [K] | bias [K] | ACC |", "|---|---|---|---|---|"]
    for name, m in models.items():
        pl = m.fields["ta"].per_level if "ta" in m.fields else None
        if pl is not None:
            lines += [_row(name, [i, pl.rmse[i], pl.bias[i], pl.acc[i]], first_plain=True)
                      for i in range(len(pl.rmse))]
    lines += _field_metrics_lines(scores.field_metrics, variables)
    if scores.uncertainty is not None:
        lines += _uncertainty_lines(scores.uncertainty)
    lines += ["", "## Figures", ""]
    lines += [f"![{k}]({v})" for k, v in figures.items()]
    return "\n".join(lines) + "\n"


FIELD_METRIC_TITLES = (
    ("rmse_per_run_mean", "Per-run lat-weighted RMSE, mean over test runs"),
    ("acc_per_run_mean", "Per-run anomaly correlation, mean over test runs"),
    ("energy_score", "Energy score (lat-weighted, per sample; one member: its RMSE)"),
    ("crps", "CRPS (one member: the mean absolute error)"),
)


def _field_metrics_lines(metrics: dict[str, dict[str, dict[str, float]]],
                         variables: Sequence[str]) -> list[str]:
    """One table per metric of :mod:`exocube.ml.field_metrics`, models as rows."""
    lines: list[str] = []
    for key, title in FIELD_METRIC_TITLES:
        lines += ["", f"## {title}", "", *_table("model", variables)]
        lines += [_row(name, [m[v].get(key) for v in variables]) for name, m in metrics.items()]
    return lines


def _uncertainty_lines(u: dict[str, Any]) -> list[str]:
    """The ensemble's calibration table (variables, then the scalar head's scalars)."""
    levels = u["coverage_levels"]
    shown = [levels.index(c) for c in (0.5, 0.9) if c in levels]
    if u["method"] == STD_HEAD:
        head = [f"## Uncertainty: {STD_HEAD} (the network's Gaussian)", "",
                "Spread-skill = sqrt(mean predicted variance) / RMSE of the mean (1 when "
                "calibrated); coverage: observed fraction inside mean +- z sigma (the "
                "normal quantile z)."]
    else:
        head = [f"## Uncertainty: {u['method']} of {u['n_members']} members", "",
                "Spread-skill = sqrt((N+1)/N) * spread / RMSE of the ensemble mean (1 when "
                "calibrated); coverage: observed fraction inside the central predictive "
                "(Student-t) interval."]
    lines = ["", *head,
             "", "| | spread | RMSE (mean) | spread-skill | CRPS | CRPS (Gaussian) | "
             + " | ".join(f"coverage {levels[i]:.0%}" for i in shown) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(shown)]
    rows = {**u["variables"], **u.get("scalars", {})}
    for name, r in rows.items():
        lines.append(_row(name, [r["spread"], r["rmse_ensemble_mean"], r["spread_skill"],
                                 r["crps"], r.get("crps_gaussian"),
                                 *[r["coverage"][i] for i in shown]]))
    return lines


def _table(corner: str, columns: Sequence[str]) -> list[str]:
    """A markdown table's header and rule."""
    head = f"| {corner} | " if corner else "| | "
    return [head + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]


def _row(name: str, values: Sequence[Any], first_plain: bool = False) -> str:
    """A markdown table row; ``first_plain`` prints the first value as is (a level index)."""
    cells = [str(v) if first_plain and i == 0 else _fmt(v) for i, v in enumerate(values)]
    return f"| {name} | " + " | ".join(cells) + " |"
