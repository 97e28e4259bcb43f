"""The LightningModule: U-Net + scalar model, data and physics losses, prediction.

The model's typed ``__init__`` arguments are the ``model:`` section of a
training config. ``data_spec`` is filled in by the CLI from the datamodule
(a :class:`~exocube.ml.spec.DataSpec`: grid, statistics, split, training
parameters) and saved in the checkpoint as its dictionary, so a checkpoint
alone can predict and knows what it was trained on; :attr:`SurrogateTask.spec`
is the typed spec. The model encodes raw parameters itself, by its spec's
parameter names and scales.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from exocube.errors import ConfigError, InputDataError, ModelUnavailableError
from exocube.grid import latitude_weights
from exocube.ml import losses, thermo
from exocube.ml.hull import warn_outside
from exocube.ml.scalar import (
    SCALAR_NAMES,
    SCALAR_SCALE,
    ScalarMLP,
    denormalise_scalars,
    normalise_scalars,
    scalar_diagnostics,
)
from exocube.ml.spec import DataSpec
from exocube.ml.transforms import Normaliser
from exocube.ml.unet import SphereUNet3d, forcing_maps
from exocube.physics import BAR_TO_PA
from exocube.planet import SUBSTELLAR_LON_DEG

log = logging.getLogger(__name__)

PHYSICS_TERMS: dict[str, tuple[str, ...]] = {
    "hydrostatic": ("ta", "hus", "zg"),
    "humidity": ("ta", "hus"),
    "mass_continuity": ("ua", "va"),
}
CONSTRAINTS: tuple[str, ...] = ("soft", "hard")
#: Largest relative humidity of a hard-constrained model: the margin below 1 keeps ``hus``
#: under ``q_sat`` when float32 ``q_sat`` is recomputed in float64.
RH_MAX = 1.0 - 1.0e-5
#: ``q_sat`` of a hard-constrained model reads ``ta`` at least this [K] (below-ground levels
#: hold untrained values; an exact 0 K would make the gradient NaN).
TA_FLOOR_K = 1.0
#: The ``zg`` integral of a hard-constrained model starts from at least this surface
#: pressure [Pa] (an untrained network may predict ``ps <= 0``, whose logarithm is NaN).
PS_FLOOR_PA = 1.0
#: Smallest ``hus`` standard deviation [kg/kg] of a hard-constrained model's normalisation:
#: levels where the store's humidity is exactly 0 (std 0) would otherwise turn any positive
#: ``RH * q_sat`` into an infinite normalised error.
HUS_STD_FLOOR = 1.0e-6
#: Bound on a std head's log standard deviation (normalised units): e^-10 to e^10.
LOG_STD_BOUND = 10.0


class SurrogateTask(L.LightningModule):
    """Predict 3-D and surface climate fields (and scalar diagnostics) from parameters.

    Args:
        depth, base_features: U-Net depth (poolings) and width of its first level.
        lr, weight_decay: AdamW settings (cosine decay over ``max_epochs``).
        physics: physics terms to train with (subset of hydrostatic, humidity,
            mass_continuity); a term whose variables are not learned is skipped, and so is a
            term the hard constraints satisfy by construction.
        constraints: ``soft`` (every field is a free network output; the physics terms are
            losses) or ``hard``: ``hus`` is ``RH_MAX * sigmoid(z + z_clim) * q_sat(ta, p)`` (so
            ``0 <= hus <= q_sat``) and ``zg`` is the hypsometric integral of ``ta`` and
            ``hus`` upward from the surface (the predicted ``ps`` and ``ts``, else the
            parameter's surface pressure and the lowest level's ``ta``) with the run's
            gravity and gas constant, so hydrostatic balance holds to rounding. Each applies
            when its variables are learned (``hus``: ta, hus; ``zg``: ta, hus, zg).
        uncertainty_weighting: learn the term weights (else all weights are 1).
        physics_max_ratio: cap on each physics term's learned weight, as a
            fraction of the data term's weight (see ``UncertaintyWeighting``).
        scalar_head: also train the scalar model on diagnostics of ``ts``/``ps``.
        substellar_lon_deg: longitude of the substellar point of tidally locked runs
            (the built-in generator puts it at 180 degrees east).
        predict_std: the networks also predict each output's standard deviation (a
            Gaussian head: one log-std channel per field and scalar, trained by the Gaussian
            negative log-likelihood of the truth around the detached mean, so the mean is
            trained as without it); one pass gives a prediction and its uncertainty.
        init_from: a checkpoint whose networks' weights (U-Net and scalar head, not the
            normalisation or the loss weights) start this training, e.g. a model pre-trained
            on many generator runs, fine-tuned here on GCM runs. Loaded when ``fit``
            starts (a resumed fit then restores its own weights over them); the
            architecture and the inputs must be the checkpoint's.
        data_spec: set by the CLI from ``data.spec``: a DataSpec or its dictionary
            (also the unversioned one of older checkpoints).
    """

    def __init__(self, depth: int = 3, base_features: int = 16, lr: float = 2e-3,
                 weight_decay: float = 1e-5,
                 physics: tuple[str, ...] = ("hydrostatic", "humidity", "mass_continuity"),
                 uncertainty_weighting: bool = True, physics_max_ratio: float = 0.1,
                 scalar_head: bool = True,
                 substellar_lon_deg: float = SUBSTELLAR_LON_DEG,
                 data_spec: DataSpec | Mapping[str, Any] | None = None,
                 constraints: str = "soft", predict_std: bool = False,
                 init_from: str | None = None) -> None:
        super().__init__()
        if data_spec is None:
            raise ConfigError("SurrogateTask needs data_spec (the datamodule's spec); the "
                              "training CLI links it, in Python pass data_spec=dm.spec")
        unknown = sorted(set(physics) - set(PHYSICS_TERMS))
        if unknown:
            raise ConfigError(f"unknown physics terms {unknown}; choose from "
                              f"{sorted(PHYSICS_TERMS)}")
        if constraints not in CONSTRAINTS:
            raise ConfigError(f"constraints={constraints!r}; choose from {list(CONSTRAINTS)}")
        spec = data_spec if isinstance(data_spec, DataSpec) else DataSpec.from_dict(data_spec)
        data_spec = spec.to_dict()  # what the checkpoint keeps (save_hyperparameters reads it)
        self.save_hyperparameters()
        self.spec = spec
        self.v3, self.v2 = list(spec.variables_3d), list(spec.variables_2d)
        self.ch = {v: i for i, v in enumerate(self.v3)}
        self.normaliser = Normaliser(self.v3, self.v2, spec.stats)
        for name, values in spec.grid.coords().items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32),
                                 persistent=False)
        self.grid_shape = spec.shape
        full = spec.full_sphere
        n_features = spec.params.n_features
        self.predict_std = bool(predict_std)
        k = 2 if self.predict_std else 1
        self.unet = SphereUNet3d(self.grid_shape, n_features, k * len(self.v3),
                                 k * len(self.v2), depth, base_features, periodic_lon=full,
                                 pole_fold=full)
        self.has_scalars = scalar_head and {"ts", "ps"} <= set(self.v2)
        self.scalar_model = (ScalarMLP(n_features, n_outputs=k * len(SCALAR_NAMES))
                             if self.has_scalars else None)
        hard = constraints == "hard"
        self.build_hus = hard and {"ta", "hus"} <= set(self.v3)
        self.build_zg = hard and {"ta", "hus", "zg"} <= set(self.v3)
        built = {"hydrostatic"} if self.build_zg else set()
        built |= {"humidity"} if self.build_hus else set()
        self.physics_terms = [t for t in physics
                              if set(PHYSICS_TERMS[t]) <= set(self.v3) and t not in built]
        if self.build_hus:
            self.normaliser.std3[self.ch["hus"]].clamp_(min=HUS_STD_FLOOR)
        self.register_buffer("rh_logit", self._climatological_rh_logit(), persistent=False)
        self.term_names = ["data", *self.physics_terms] + (["scalar"] if self.has_scalars else [])
        self.weighting = (losses.UncertaintyWeighting(
            self.term_names, "data", {t: physics_max_ratio for t in self.physics_terms})
            if uncertainty_weighting else None)
        self.hus_scale = (self.normaliser.std3[self.ch["hus"]].flatten().clone()
                          if "hus" in self.ch else None)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.get("init_from"):
            self.load_network_weights(str(self.hparams["init_from"]))

    def load_network_weights(self, checkpoint: str) -> None:
        """Copy the U-Net's and the scalar head's weights from ``checkpoint``."""
        try:
            saved = read_checkpoint(checkpoint)["state_dict"]
        except (ModelUnavailableError, KeyError) as exc:
            raise ConfigError(f"init_from={checkpoint!r} is not a readable surrogate "
                              f"checkpoint: {exc}") from exc
        own = self.state_dict()
        keys = [k for k in own if k.startswith(("unet.", "scalar_model."))]
        bad = [k for k in keys if k not in saved or saved[k].shape != own[k].shape]
        if bad:
            k = bad[0]
            got = tuple(saved[k].shape) if k in saved else "absent"
            raise ConfigError(f"init_from={checkpoint!r} has another architecture: {k} is "
                              f"{got} there and {tuple(own[k].shape)} here (the depth, width, "
                              "variables, inputs and std head must be the same)")
        self.load_state_dict({**own, **{k: saved[k] for k in keys}})
        log.info("network weights initialised from %s (%d tensors)", checkpoint, len(keys))

    def _climatological_rh_logit(self) -> Tensor:
        """Per level ``(L, 1, 1)``, the logit of the store's mean relative humidity
        ``mean(hus) / q_sat(mean(ta), p)`` (clipped to [1e-9, 0.9]; 1e-9 where q_sat is 0):
        the offset of a hard-constrained model's humidity logit, so an untrained network
        starts near the climatology instead of at 50 % everywhere (zero without ``ta`` and
        ``hus``)."""
        if not {"ta", "hus"} <= set(self.v3):
            return torch.zeros(len(self.plev), 1, 1)
        mean = self.normaliser.mean3.double()
        qs = thermo.q_sat(mean[self.ch["ta"]].clamp_min(TA_FLOOR_K),
                          self.plev.double().reshape(-1, 1, 1))
        ratio = mean[self.ch["hus"]] / torch.where(qs > 0, qs, torch.ones_like(qs))
        rh = torch.where(qs > 0, ratio, torch.zeros_like(qs)).clamp(1.0e-9, 0.9)
        return torch.logit(rh).float()

    # -- forward ---------------------------------------------------------------------------
    def encode(self, params: Tensor, tidally_locked: Tensor) -> Tensor:
        """Raw parameters ``(B, len(spec.params.names))`` -> the encoded input vector."""
        return self.spec.params.encode(params, tidally_locked)

    def network(self, params: Tensor, tidally_locked: Tensor
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The networks' raw outputs (normalised 3-D, 2-D fields and scalars; under hard
        constraints the ``hus`` channel is the logit of relative humidity less the
        climatological one, and ``zg``'s is unused)."""
        return self.split_std(*self.heads(params, tidally_locked))[0]

    def heads(self, params: Tensor, tidally_locked: Tensor
              ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Every output channel of the networks: :meth:`network`'s, then (with
        ``predict_std``) the log-std channels (see :meth:`split_std`)."""
        forcing, enc = self.network_inputs(params, tidally_locked)
        z3, z2 = self.unet(forcing, enc)
        zs = self.scalar_model(enc) if self.scalar_model is not None else None
        return z3, z2, zs

    def split_std(self, z3: Tensor, z2: Tensor | None, zs: Tensor | None) -> tuple[
            tuple[Tensor, Tensor | None, Tensor | None],
            tuple[Tensor, Tensor | None, Tensor | None] | None]:
        """:meth:`heads`' outputs -> the mean outputs and (with ``predict_std``, else None)
        the log standard deviations in normalised units, clamped to
        ``[-LOG_STD_BOUND, LOG_STD_BOUND]``."""
        if not self.predict_std:
            return (z3, z2, zs), None
        c3, c2, cs = len(self.v3), len(self.v2), len(SCALAR_NAMES)

        def part(t: Tensor | None, n: int, second: bool) -> Tensor | None:
            if t is None:
                return None
            return t[:, n:].clamp(-LOG_STD_BOUND, LOG_STD_BOUND) if second else t[:, :n]

        means = (z3[:, :c3], part(z2, c2, False), part(zs, cs, False))
        return means, (z3[:, c3:].clamp(-LOG_STD_BOUND, LOG_STD_BOUND), part(z2, c2, True),
                       part(zs, cs, True))

    def network_inputs(self, params: Tensor, tidally_locked: Tensor) -> tuple[Tensor, Tensor]:
        """The U-Net's forcing maps ``(B, N_FORCING, L, H, W)`` and the encoded parameters
        ``(B, n_features)`` (the scalar model's input too)."""
        enc = self.encode(params, tidally_locked)
        table = self.spec.params
        ps = params[:, table.index("surface_pressure_bar")] * BAR_TO_PA
        insolation = params[:, table.index("insolation_earth")]
        forcing = forcing_maps(insolation, tidally_locked, ps, self.plev, self.lat, self.lon,
                               self.hparams.substellar_lon_deg)
        return forcing, enc

    @property
    def constrained(self) -> bool:
        return self.build_hus or self.build_zg

    def forward(self, params: Tensor, tidally_locked: Tensor, gravity: Tensor | None = None,
                r_gas: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Raw parameters ``(B, len(spec.params.names))`` -> normalised 3-D, 2-D fields and
        scalars (the constrained fields normalised). ``gravity`` and ``r_gas`` ``(B,)``
        default to those of the parameters."""
        return self.normalised(*self.network(params, tidally_locked), params, gravity, r_gas)

    def normalised(self, z3: Tensor, z2: Tensor | None, zs: Tensor | None, params: Tensor,
                   gravity: Tensor | None = None, r_gas: Tensor | None = None
                   ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """:meth:`forward` of the networks' raw mean outputs."""
        if self.constrained:
            f3 = self.constrain(z3, z2, params, gravity, r_gas)
            z3 = self.normaliser.norm3(f3).to(z3.dtype)
        return z3, z2, zs

    def physical(self, params: Tensor, tidally_locked: Tensor, gravity: Tensor | None = None,
                 r_gas: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Physical 3-D ``(B, C3, L, H, W)`` and 2-D ``(B, C2, H, W)`` fields (float32) and
        the normalised scalars; the constrained fields as built, not renormalised."""
        z3, z2, zs = self.network(params, tidally_locked)
        return self.to_physical(z3, z2, zs, params, gravity, r_gas)

    def physical_with_std(self, params: Tensor, tidally_locked: Tensor,
                          gravity: Tensor | None = None, r_gas: Tensor | None = None
                          ) -> tuple[tuple[Tensor, Tensor | None, Tensor | None],
                                     tuple[Tensor, Tensor | None, Tensor | None] | None]:
        """:meth:`physical` and, from the same pass, the std head's physical standard
        deviations (3-D, 2-D and the scalars' physical ones; None without ``predict_std``)."""
        means, log_std = self.split_std(*self.heads(params, tidally_locked))
        phys = self.to_physical(*means, params, gravity, r_gas)
        return phys, None if log_std is None else self.std_physical(*log_std)

    def std_physical(self, s3: Tensor, s2: Tensor | None, ss: Tensor | None
                     ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Normalised log-stds -> physical standard deviations (the scalars' too)."""
        std3 = torch.exp(s3.float()) * self.normaliser.std3
        std2 = torch.exp(s2.float()) * self.normaliser.std2 if s2 is not None else None
        return std3, std2, self.scalar_std(ss) if ss is not None else None

    def scalar_outputs(self, encoded: Tensor) -> tuple[Tensor, Tensor | None]:
        """The scalar head alone on encoded parameters: physical scalars ``(B, 3)`` and
        (with ``predict_std``, else None) their physical stds."""
        assert self.scalar_model is not None
        z = self.scalar_model(encoded).float()
        n = len(SCALAR_NAMES)
        std = self.scalar_std(z[:, n:]) if self.predict_std else None
        return denormalise_scalars(z[:, :n]), std

    @staticmethod
    def scalar_std(ss: Tensor) -> Tensor:
        """The scalar head's log-stds (normalised, ``(B, 3)``) -> physical stds."""
        return torch.exp(ss.float().clamp(-LOG_STD_BOUND, LOG_STD_BOUND)) * SCALAR_SCALE.to(
            ss.device)

    def to_physical(self, z3: Tensor, z2: Tensor | None, zs: Tensor | None, params: Tensor,
                    gravity: Tensor | None = None, r_gas: Tensor | None = None
                    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """:meth:`physical` of the networks' raw outputs for the raw ``params``."""
        f2 = self.normaliser.denorm2(z2.float()) if z2 is not None else None
        if self.constrained:
            return self.constrain(z3, z2, params, gravity, r_gas), f2, zs
        return self.normaliser.denorm3(z3.float()), f2, zs

    def constrain(self, z3: Tensor, z2: Tensor | None, params: Tensor,
                  gravity: Tensor | None, r_gas: Tensor | None) -> Tensor:
        """Physical 3-D fields with ``hus`` (and ``zg``) built from the other outputs."""
        f3 = self.normaliser.denorm3(z3.float())
        c = self.ch
        chans = list(f3.unbind(1))
        ta = chans[c["ta"]]
        p = self.plev.reshape(1, -1, 1, 1)
        q_sat = thermo.q_sat(ta.clamp_min(TA_FLOOR_K), p)
        hus = RH_MAX * torch.sigmoid(z3[:, c["hus"]].float() + self.rh_logit) * q_sat
        chans[c["hus"]] = hus
        if self.build_zg:
            ps, ts = self._surface(z2, params)
            ps = ps.clamp_min(PS_FLOOR_PA)
            g, r = self._gravity_rgas(params, gravity, r_gas)
            d = torch.float64
            zg = thermo.hypsometric_height(ta.to(d), hus.to(d), ps.to(d), self.plev.to(d),
                                           g.to(d), r.to(d), None if ts is None else ts.to(d))
            chans[c["zg"]] = zg.to(f3.dtype)
        return torch.stack(chans, dim=1)

    def _surface(self, z2: Tensor | None, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """Surface pressure ``(B, H, W)`` [Pa] and temperature (or None) the zg integral
        starts from: the predicted ones, else the parameter's pressure (and no ts)."""
        f2 = self.normaliser.denorm2(z2.float()) if z2 is not None else None
        if f2 is not None and "ps" in self.v2:
            ps = f2[:, self.v2.index("ps")]
        else:
            bar = params[:, self.spec.params.index("surface_pressure_bar")].float()
            ps = (bar * BAR_TO_PA).reshape(-1, 1, 1).expand(-1, *self.grid_shape[1:])
        ts = f2[:, self.v2.index("ts")] if f2 is not None and "ts" in self.v2 else None
        return ps, ts

    def _gravity_rgas(self, params: Tensor, gravity: Tensor | None, r_gas: Tensor | None
                      ) -> tuple[Tensor, Tensor]:
        """Per-sample gravity and gas constant: given, else derived from the parameters."""
        table = self.spec.params
        col = {n: params[:, i].double() for i, n in enumerate(table.names)}
        if gravity is None:
            gravity = (col["gravity_m_s2"] if "gravity_m_s2" in col
                       else thermo.surface_gravity(col["mass_earth"], col["radius_earth"]))
        if r_gas is None:
            r_gas = thermo.gas_constant(col["pco2_bar"], col["surface_pressure_bar"])
        return gravity, r_gas

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
        means, log_std = self.split_std(*self.heads(batch["params"], batch["tidally_locked"]))
        z3, z2, zs = self.normalised(*means, batch["params"], batch["gravity"],
                                     batch.get("r_gas"))
        ch_loss = losses.weighted_mse(z3, batch["x3"], batch["m3"], self.lat)
        if z2 is not None:
            ch_loss = torch.cat([ch_loss, losses.weighted_mse(z2, batch["x2"], batch["m2"],
                                                              self.lat)])
        terms = {"data": ch_loss.mean()}
        f3 = self.normaliser.denorm3(z3.float())
        terms.update(self.physics_losses(f3, batch["m3"], batch["gravity"], batch.get("r_gas")))
        truth_s = normalise_scalars(self.truth_scalars(batch)) if zs is not None else None
        if zs is not None:
            terms["scalar"] = torch.nn.functional.mse_loss(zs, truth_s)
        if log_std is not None:
            terms["spread"] = self.spread_loss((z3, z2, zs), log_std, batch, truth_s)
        return terms, ch_loss, z3

    def spread_loss(self, means: tuple[Tensor, Tensor | None, Tensor | None],
                    log_std: tuple[Tensor, Tensor | None, Tensor | None],
                    batch: dict[str, Tensor], truth_scalars: Tensor | None) -> Tensor:
        """The std head's loss: the mean over channels (and scalars) of the area-weighted
        Gaussian negative log-likelihood of the truth around the detached mean."""
        z3, z2, zs = means
        s3, s2, ss = log_std
        nll = losses.gaussian_nll(z3.detach(), s3, batch["x3"], batch["m3"], self.lat)
        if z2 is not None and s2 is not None:
            nll = torch.cat([nll, losses.gaussian_nll(z2.detach(), s2, batch["x2"],
                                                      batch["m2"], self.lat)])
        if zs is not None and ss is not None and truth_scalars is not None:
            r = (truth_scalars - zs.detach()) * torch.exp(-ss)
            nll = torch.cat([nll, (0.5 * r.square() + ss).mean(0)])
        return nll.mean()

    def truth_scalars(self, batch: dict[str, Tensor]) -> Tensor:
        """Scalar diagnostics of the batch's true surface fields, ``(B, 3)``."""
        f2 = self.normaliser.denorm2(batch["x2"])
        ts, ps = f2[:, self.v2.index("ts")], f2[:, self.v2.index("ps")]
        return scalar_diagnostics(ts, ps, self.lat, self.lon, self.hparams.substellar_lon_deg)

    def _total(self, terms: dict[str, Tensor]) -> Tensor:
        """The weighted terms' sum, plus the std head's loss unweighted (a negative
        log-likelihood can be negative, which a learned weight would run away with)."""
        rest = {k: v for k, v in terms.items() if k != "spread"}
        total = (self.weighting(rest) if self.weighting is not None
                 else torch.stack(list(rest.values())).sum())
        return total + terms["spread"] if "spread" in terms else total

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
        w = latitude_weights(self.lat).reshape(1, 1, -1, 1) * m
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
        phys, std = self.physical_with_std(params, tidally_locked)
        out = self.outputs(*phys, params)
        if std is not None:
            out.update(self.std_outputs(*std, out))
        return out

    def std_outputs(self, std3: Tensor, std2: Tensor | None, stds: Tensor | None,
                    out: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The std head's ``<name>_std`` outputs, NaN where :meth:`outputs` puts a 3-D level
        below the surface."""
        res = {f"{v}_std": torch.where(torch.isnan(out[v]), out[v], std3[:, i])
               for i, v in enumerate(self.v3)}
        if std2 is not None:
            res.update({f"{v}_std": std2[:, i] for i, v in enumerate(self.v2)})
        if stds is not None:
            res.update({f"{n}_std": stds[:, i] for i, n in enumerate(SCALAR_NAMES)})
        return res

    def outputs(self, f3: Tensor, f2: Tensor | None, zs: Tensor | None, params: Tensor
                ) -> dict[str, Tensor]:
        """:meth:`predict_physical`'s named outputs of physical fields and normalised
        scalars (for the raw ``params``)."""
        out: dict[str, Tensor] = {}
        if f2 is not None:
            out.update({v: f2[:, i] for i, v in enumerate(self.v2)})
        if "ps" in out:
            below = self.plev.reshape(1, -1, 1, 1) > out["ps"].unsqueeze(1)
        else:
            ps = params[:, self.spec.params.index("surface_pressure_bar")] * BAR_TO_PA
            below = self.plev.reshape(1, -1, 1, 1) > ps.reshape(-1, 1, 1, 1)
        for i, v in enumerate(self.v3):
            out[v] = torch.where(below, torch.full_like(f3[:, i], float("nan")), f3[:, i])
        if zs is not None:
            s = denormalise_scalars(zs.float())
            out.update({n: s[:, i] for i, n in enumerate(SCALAR_NAMES)})
        return out

    def check_extrapolation(self, params: np.ndarray, tidally_locked: np.ndarray) -> np.ndarray:
        """Warn (ExtrapolationWarning) for queries outside the training runs' hull."""
        enc = self.training_encoded()
        q = self.encode(torch.tensor(np.asarray(params, float)),
                        torch.tensor(np.asarray(tidally_locked, bool))).numpy()
        return warn_outside(enc, q, [*self.spec.params.names, "tidally_locked"])

    def training_encoded(self) -> np.ndarray:
        """The encoded parameters of the training runs, ``(N, n_features)`` float64."""
        values, locked = self.spec.training_params()
        return self.encode(torch.tensor(values), torch.tensor(locked)).numpy()

    def predict(self, params: np.ndarray, tidally_locked: np.ndarray) -> dict[str, np.ndarray]:
        """Predict physical fields for ``params`` ``(N, len(spec.params.names))`` (raw units),
        warning with the hull distance for queries outside the training data."""
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        names = self.spec.params.names
        if params.shape[1] != len(names):
            raise InputDataError(f"params must have {len(names)} columns {names}, "
                                 f"got shape {params.shape}")
        locked = np.broadcast_to(np.asarray(tidally_locked, bool), (params.shape[0],))
        self.check_extrapolation(params, locked)
        self.eval()
        out = self.predict_physical(torch.tensor(params, dtype=torch.float32, device=self.device),
                                    torch.tensor(locked, device=self.device))
        return {k: v.cpu().numpy() for k, v in out.items()}


def load_task(checkpoint: str | Path) -> SurrogateTask:
    """The network in ``checkpoint`` on the CPU, in evaluation mode.

    The file is read with torch's weights-only unpickler (tensors and plain types), so a
    checkpoint from elsewhere (an imported model, say) cannot run code when it is loaded;
    a file that is not such a checkpoint is a ModelUnavailableError naming it."""
    try:
        task = SurrogateTask.load_from_checkpoint(str(checkpoint), map_location="cpu",
                                                  weights_only=True)
    except (OSError, EOFError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ModelUnavailableError(f"{checkpoint} is not a loadable exocube surrogate "
                                    f"checkpoint: {exc}") from exc
    task.eval()
    return task


def read_checkpoint(checkpoint: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, read with the weights-only unpickler (see :func:`load_task`)."""
    try:
        doc = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ModelUnavailableError(f"{checkpoint} is not a readable exocube surrogate "
                                    f"checkpoint: {exc}") from exc
    if not isinstance(doc, dict):
        raise ModelUnavailableError(f"{checkpoint} is not an exocube surrogate checkpoint")
    return doc
