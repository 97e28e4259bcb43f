"""The LightningModule: U-Net + scalar model, data and physics losses, prediction.

The model's typed ``__init__`` arguments are the ``model:`` section of a
training config. ``data_spec`` is filled in by the CLI from the datamodule
(grid, statistics, split, training parameters) and saved in the checkpoint,
so a checkpoint alone can predict and knows what it was trained on.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from exocube.errors import ConfigError, InputDataError
from exocube.ml import losses
from exocube.ml.hull import warn_outside
from exocube.ml.scalar import (
    SCALAR_NAMES,
    ScalarMLP,
    denormalise_scalars,
    normalise_scalars,
    scalar_diagnostics,
)
from exocube.ml.thermo import cos_lat_weights
from exocube.ml.transforms import N_PARAM_FEATURES, Normaliser, encode_params
from exocube.ml.unet import SphereUNet3d, forcing_maps
from exocube.params import MODEL_INPUT_NAMES_V1

log = logging.getLogger(__name__)

PHYSICS_TERMS: dict[str, tuple[str, ...]] = {
    "hydrostatic": ("ta", "hus", "zg"),
    "humidity": ("ta", "hus"),
    "mass_continuity": ("ua", "va"),
}


class SurrogateTask(L.LightningModule):
    """Predict 3-D and surface climate fields (and scalar diagnostics) from parameters.

    Args:
        depth, base_features: U-Net depth (poolings) and width of its first level.
        lr, weight_decay: AdamW settings (cosine decay over ``max_epochs``).
        physics: physics terms to train with (subset of hydrostatic, humidity,
            mass_continuity); a term whose variables are not learned is skipped.
        uncertainty_weighting: learn the term weights (else all weights are 1).
        physics_max_ratio: cap on each physics term's learned weight, as a
            fraction of the data term's weight (see ``UncertaintyWeighting``).
        scalar_head: also train the scalar model on diagnostics of ``ts``/``ps``.
        substellar_lon_deg: longitude of the substellar point of tidally locked runs
            (the built-in generator puts it at 180 degrees east).
        data_spec: set by the CLI from ``data.spec``.
    """

    def __init__(self, depth: int = 3, base_features: int = 16, lr: float = 2e-3,
                 weight_decay: float = 1e-5,
                 physics: tuple[str, ...] = ("hydrostatic", "humidity", "mass_continuity"),
                 uncertainty_weighting: bool = True, physics_max_ratio: float = 0.1,
                 scalar_head: bool = True,
                 substellar_lon_deg: float = 180.0,
                 data_spec: dict[str, Any] | None = None) -> None:
        super().__init__()
        if data_spec is None:
            raise ConfigError("SurrogateTask needs data_spec (the datamodule's spec); the "
                              "training CLI links it, in Python pass data_spec=dm.spec")
        unknown = sorted(set(physics) - set(PHYSICS_TERMS))
        if unknown:
            raise ConfigError(f"unknown physics terms {unknown}; choose from "
                              f"{sorted(PHYSICS_TERMS)}")
        self.save_hyperparameters()
        spec = data_spec
        self.v3, self.v2 = list(spec["variables_3d"]), list(spec["variables_2d"])
        self.ch = {v: i for i, v in enumerate(self.v3)}
        self.normaliser = Normaliser(self.v3, self.v2, spec["stats"])
        for name in ("plev", "lat", "lon"):
            self.register_buffer(name, torch.tensor(spec[name], dtype=torch.float32),
                                 persistent=False)
        self.grid_shape = tuple(spec["shape"])
        full = bool(spec["full_sphere"])
        self.unet = SphereUNet3d(self.grid_shape, N_PARAM_FEATURES, len(self.v3), len(self.v2),
                                 depth, base_features, periodic_lon=full, pole_fold=full)
        self.has_scalars = scalar_head and {"ts", "ps"} <= set(self.v2)
        self.scalar_model = ScalarMLP(N_PARAM_FEATURES) if self.has_scalars else None
        self.physics_terms = [t for t in physics if set(PHYSICS_TERMS[t]) <= set(self.v3)]
        self.term_names = ["data", *self.physics_terms] + (["scalar"] if self.has_scalars else [])
        self.weighting = (losses.UncertaintyWeighting(
            self.term_names, "data", {t: physics_max_ratio for t in self.physics_terms})
            if uncertainty_weighting else None)
        self.hus_scale = (self.normaliser.std3[self.ch["hus"]].flatten().clone()
                          if "hus" in self.ch else None)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, params: Tensor, tidally_locked: Tensor
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Raw parameters ``(B, len(MODEL_INPUT_NAMES_V1))`` -> normalised 3-D, 2-D fields and
        scalars."""
        if params.ndim != 2 or params.shape[1] != len(MODEL_INPUT_NAMES_V1):
            raise ValueError(f"params must be (B, {len(MODEL_INPUT_NAMES_V1)}) in the order "
                             f"{MODEL_INPUT_NAMES_V1}, got {tuple(params.shape)}")
        enc = encode_params(params, tidally_locked)
        ps = params[:, MODEL_INPUT_NAMES_V1.index("surface_pressure_bar")] * 1.0e5
        insolation = params[:, MODEL_INPUT_NAMES_V1.index("insolation_earth")]
        forcing = forcing_maps(insolation, tidally_locked, ps, self.plev, self.lat, self.lon,
                               self.hparams.substellar_lon_deg)
        z3, z2 = self.unet(forcing, enc)
        zs = self.scalar_model(enc) if self.scalar_model is not None else None
        return z3, z2, zs

    # -- losses ----------------------------------------------------------------------------
    def physics_losses(self, f3: Tensor, valid: Tensor, gravity: Tensor,
                       r_gas: Tensor | None = None) -> dict[str, Tensor]:
        """The active physics terms on physical 3-D fields ``(B, C3, L, H, W)``."""
        c = self.ch
        out: dict[str, Tensor] = {}
        if "hydrostatic" in self.physics_terms:
            out["hydrostatic"] = losses.hydrostatic_loss(
                f3[:, c["ta"]], f3[:, c["hus"]], f3[:, c["zg"]], self.plev, gravity,
                valid[:, c["zg"]] & valid[:, c["ta"]], r_gas)
        if "humidity" in self.physics_terms:
            out["humidity"] = losses.humidity_loss(f3[:, c["hus"]], f3[:, c["ta"]], self.plev,
                                                   valid[:, c["hus"]], self.hus_scale)
        if "mass_continuity" in self.physics_terms:
            out["mass_continuity"] = losses.mass_continuity_loss(
                f3[:, c["ua"]], f3[:, c["va"]], valid[:, c["ua"]], self.plev, self.lat)
        return out

    def _terms(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor, Tensor | None]:
        z3, z2, zs = self(batch["params"], batch["tidally_locked"])
        ch_loss = losses.weighted_mse(z3, batch["x3"], batch["m3"], self.lat)
        if z2 is not None:
            ch_loss = torch.cat([ch_loss, losses.weighted_mse(z2, batch["x2"], batch["m2"],
                                                              self.lat)])
        terms = {"data": ch_loss.mean()}
        f3 = self.normaliser.denorm3(z3.float())
        terms.update(self.physics_losses(f3, batch["m3"], batch["gravity"], batch.get("r_gas")))
        if zs is not None:
            truth = self.truth_scalars(batch)
            terms["scalar"] = torch.nn.functional.mse_loss(zs, normalise_scalars(truth))
        return terms, ch_loss, z3

    def truth_scalars(self, batch: dict[str, Tensor]) -> Tensor:
        """Scalar diagnostics of the batch's true surface fields, ``(B, 3)``."""
        f2 = self.normaliser.denorm2(batch["x2"])
        ts, ps = f2[:, self.v2.index("ts")], f2[:, self.v2.index("ps")]
        return scalar_diagnostics(ts, ps, self.lat, self.lon, self.hparams.substellar_lon_deg)

    def _total(self, terms: dict[str, Tensor]) -> Tensor:
        if self.weighting is not None:
            return self.weighting(terms)
        return torch.stack(list(terms.values())).sum()

    def _log_terms(self, stage: str, terms: dict[str, Tensor], total: Tensor, ch: Tensor,
                   bs: int) -> None:
        for name, value in terms.items():
            self.log(f"{stage}/{name}", value, batch_size=bs, on_epoch=True,
                     on_step=stage == "train")
        self.log(f"{stage}/total", total, batch_size=bs, on_epoch=True, prog_bar=stage == "train")
        names = self.v3 + self.v2
        for i, n in enumerate(names):
            self.log(f"{stage}/mse_{n}", ch[i], batch_size=bs, on_epoch=True, on_step=False)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        terms, ch, _ = self._terms(batch)
        total = self._total(terms)
        self._log_terms("train", terms, total, ch, batch["x3"].shape[0])
        if self.weighting is not None:
            for name, w in self.weighting.weights().items():
                self.log(f"weight/{name}", w, on_step=True, on_epoch=False, batch_size=1)
        return total

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        terms, ch, z3 = self._terms(batch)
        total = self._total(terms)
        self._log_terms("val", terms, total, ch, batch["x3"].shape[0])
        n = batch["x3"].shape[0]
        self.log("val/loss", terms["data"], batch_size=n, on_epoch=True, prog_bar=True)
        if "ta" in self.ch:
            self.log("val/rmse_ta", self._rmse(z3, batch, "ta"), batch_size=n, on_epoch=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        terms, ch, z3 = self._terms(batch)
        self._log_terms("test", terms, self._total(terms), ch, batch["x3"].shape[0])
        if "ta" in self.ch:
            self.log("test/rmse_ta", self._rmse(z3, batch, "ta"),
                     batch_size=batch["x3"].shape[0])

    def _rmse(self, z3: Tensor, batch: dict[str, Tensor], var: str) -> Tensor:
        """Latitude-weighted RMSE [physical units] of one 3-D variable over valid points."""
        c = self.ch[var]
        pred = self.normaliser.denorm3(z3.float())[:, c]
        truth = self.normaliser.denorm3(batch["x3"])[:, c]
        m = batch["m3"][:, c]
        w = cos_lat_weights(self.lat).reshape(1, 1, -1, 1) * m
        return torch.sqrt(((pred - truth).square() * w).sum() / w.sum().clamp_min(1e-12))

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
        epochs = max(int(self.trainer.max_epochs or 1), 1) if self._trainer else 1
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # -- prediction ------------------------------------------------------------------------
    @torch.no_grad()
    def predict_physical(self, params: Tensor, tidally_locked: Tensor) -> dict[str, Tensor]:
        """Physical fields for raw parameters: 3-D ``(B, L, H, W)`` with NaN where the level
        lies below the predicted surface pressure, 2-D ``(B, H, W)``, scalars ``(B,)``."""
        z3, z2, zs = self(params, tidally_locked)
        f3 = self.normaliser.denorm3(z3.float())
        out: dict[str, Tensor] = {}
        if z2 is not None:
            f2 = self.normaliser.denorm2(z2.float())
            out.update({v: f2[:, i] for i, v in enumerate(self.v2)})
        if "ps" in out:
            below = self.plev.reshape(1, -1, 1, 1) > out["ps"].unsqueeze(1)
        else:
            ps = params[:, MODEL_INPUT_NAMES_V1.index("surface_pressure_bar")] * 1.0e5
            below = self.plev.reshape(1, -1, 1, 1) > ps.reshape(-1, 1, 1, 1)
        for i, v in enumerate(self.v3):
            out[v] = torch.where(below, torch.full_like(f3[:, i], float("nan")), f3[:, i])
        if zs is not None:
            s = denormalise_scalars(zs.float())
            out.update({n: s[:, i] for i, n in enumerate(SCALAR_NAMES)})
        return out

    def check_extrapolation(self, params: np.ndarray, tidally_locked: np.ndarray) -> np.ndarray:
        """Warn (ExtrapolationWarning) for queries outside the training runs' hull."""
        p = self.hparams.data_spec["params"]
        rows = [p["runs"].index(r) for r in self.hparams.data_spec["split"]["train"]]
        train = np.asarray(p["values"], float)[rows]
        train_locked = np.asarray(p["tidally_locked"], bool)[rows]
        enc = encode_params(torch.tensor(train), torch.tensor(train_locked)).numpy()
        q = encode_params(torch.tensor(np.asarray(params, float)),
                          torch.tensor(np.asarray(tidally_locked, bool))).numpy()
        return warn_outside(enc, q, [*MODEL_INPUT_NAMES_V1, "tidally_locked"])

    def predict(self, params: np.ndarray, tidally_locked: np.ndarray) -> dict[str, np.ndarray]:
        """Predict physical fields for ``params`` ``(N, len(MODEL_INPUT_NAMES_V1))`` (raw units),
        warning with the hull distance for queries outside the training data."""
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        if params.shape[1] != len(MODEL_INPUT_NAMES_V1):
            raise InputDataError(f"params must have {len(MODEL_INPUT_NAMES_V1)} columns "
                                 f"{MODEL_INPUT_NAMES_V1}, got shape {params.shape}")
        locked = np.broadcast_to(np.asarray(tidally_locked, bool), (params.shape[0],))
        self.check_extrapolation(params, locked)
        self.eval()
        out = self.predict_physical(torch.tensor(params, dtype=torch.float32, device=self.device),
                                    torch.tensor(locked, device=self.device))
        return {k: v.cpu().numpy() for k, v in out.items()}
