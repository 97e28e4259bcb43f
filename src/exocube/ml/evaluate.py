"""Score a trained surrogate on its held-out runs, next to the baselines and the truth.

For every model (the U-Net and each baseline, fitted on the checkpoint's own
training runs) the scores of :mod:`exocube.ml.scores` (fields per variable and
level, physics residuals, scalar diagnostics), the figures of
:mod:`exocube.ml.figures`, and the report written here.

Output: ``metrics.json``, ``report.md`` and PNG figures in one directory.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exocube.errors import StoreError
from exocube.ml.baselines import Samples, collect, make_baselines
from exocube.ml.datamodule import CubeDataModule, RunWindowDataset
from exocube.ml.figures import make_figures
from exocube.ml.scalar import SCALAR_NAMES, denormalise_scalars
from exocube.ml.scores import (
    Prediction,
    Scores,
    field_scalars,
    field_scores,
    sample_physics,
    score_model,
)
from exocube.ml.spec import DataSpec
from exocube.ml.task import SurrogateTask

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
def predict_model(model: SurrogateTask, s: Samples, batch: int = 8) -> Prediction:
    model.eval()
    f3, f2, sc = [], [], []
    for i in range(0, len(s.params), batch):
        p = torch.tensor(s.params[i:i + batch], dtype=torch.float32)
        g = torch.tensor(s.gravity[i:i + batch], dtype=torch.float64)
        r = torch.tensor(s.r_gas[i:i + batch], dtype=torch.float64)
        x3, x2, zs = model.physical(p, torch.tensor(s.locked[i:i + batch]), g, r)
        f3.append(x3.double().numpy())
        f2.append(x2.double().numpy() if x2 is not None
                  else np.zeros((len(p), 0, *s.x2.shape[2:])))
        if zs is not None:
            sc.append(denormalise_scalars(zs).double().numpy())
    return Prediction(np.concatenate(f3), np.concatenate(f2),
                      np.concatenate(sc) if sc else None)


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
    model = SurrogateTask.load_from_checkpoint(checkpoint, map_location="cpu")
    spec = model.spec
    dm = datamodule_for(spec, store, version, database_url)
    test_ds, train_ds = dm.make_dataset(split), dm.make_dataset("train")
    s, train = collect(test_ds), collect(train_ds)
    truth = truth_of(s, test_ds)
    baselines, clim = baseline_predictions(s, train, test_ds, with_baselines)
    preds = {"unet": predict_model(model, s), **baselines}
    substellar = float(model.hparams.substellar_lon_deg)
    truth_sc = field_scalars(truth.f2, spec.variables_2d, spec.lat, spec.lon, substellar)
    scores = Scores(
        checkpoint=str(checkpoint), store=store, version=dm.spec.version,
        trained_on_version=spec.version, split=split, n_runs=len(spec.split.runs(split)),
        n_samples=len(s.params), n_train_runs=len(spec.split.train),
        truth_physics=sample_physics(truth.f3, s, spec),
        models={name: score_model(p, truth, s, clim, spec, substellar, truth_sc)
                for name, p in preds.items()})
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = make_figures(out_dir, preds, truth, s, spec, map_levels or [], checkpoint,
                           truth_sc, substellar)
    return write_report(out_dir, scores, figures)


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
    lines += ["", "## Figures", ""]
    lines += [f"![{k}]({v})" for k, v in figures.items()]
    return "\n".join(lines) + "\n"


def _table(corner: str, columns: Sequence[str]) -> list[str]:
    """A markdown table's header and rule."""
    head = f"| {corner} | " if corner else "| | "
    return [head + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]


def _row(name: str, values: Sequence[Any], first_plain: bool = False) -> str:
    """A markdown table row; ``first_plain`` prints the first value as is (a level index)."""
    cells = [str(v) if first_plain and i == 0 else _fmt(v) for i, v in enumerate(values)]
    return f"| {name} | " + " | ".join(cells) + " |"
