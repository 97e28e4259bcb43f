"""Normalisation of fields and parameters, and augmentations that keep the physics.

Batches are dicts of tensors (see :mod:`exocube.ml.datamodule`): ``x3``
``(B, C3, L, H, W)`` and ``x2`` ``(B, C2, H, W)`` hold normalised fields with
zeros where the masks ``m3``/``m2`` are ``False`` (below ground).

The augmentations act on a whole batch at once, each sample drawing its own
random choice:

- :class:`LongitudeRoll`: rotate the planet in longitude, only for runs that
  are not tidally locked (their forcing has no preferred longitude);
- :class:`HemisphericMirror`: flip latitude and change the sign of ``va``
  (valid for zero obliquity, where the two hemispheres are mirror images);
- :class:`FieldNoise`: Gaussian noise of ``sigma`` times each variable's
  per-level standard deviation (in normalised units that is ``sigma``).

Rolling and mirroring move whole columns, so hydrostatic balance, the
humidity bounds and the column mass divergence stay satisfied; the noise
perturbs them by design (its default is 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from exocube.ml.spec import Stats, current_scales, encode_with
from exocube.params import MODEL_INPUT_NAMES_V1

N_PARAM_FEATURES = len(MODEL_INPUT_NAMES_V1) + 1  # the parameters plus the tidal-locking flag


def encode_params(values: Tensor, tidally_locked: Tensor) -> Tensor:
    """Map raw parameters ``(B, len(MODEL_INPUT_NAMES_V1))`` to [-1, 1] by the v1 ranges
    (log-scaled where the spec says so), plus the locking flag as -1/1. A trained model
    encodes with the scales of its own data spec (:meth:`ParamTable.encode`)."""
    return encode_with(current_scales(MODEL_INPUT_NAMES_V1), values, tidally_locked)


class Normaliser(nn.Module):
    """Per-variable, per-level standardisation with the store's statistics.

    ``stats`` maps each variable to its :class:`~exocube.ml.spec.Stats` (or to
    ``{"mean": ..., "std": ...}``): values over levels for 3-D variables, one value
    for 2-D ones. A level with no valid data
    (NaN statistics) gets mean 0 and std 1; a zero std is raised to a tiny
    fraction of the mean so the division stays finite.
    """

    def __init__(self, variables_3d: Sequence[str], variables_2d: Sequence[str],
                 stats: Mapping[str, Stats | Mapping[str, object]]) -> None:
        super().__init__()
        self.variables_3d, self.variables_2d = list(variables_3d), list(variables_2d)
        m3, s3 = self._table(self.variables_3d, stats)
        m2, s2 = self._table(self.variables_2d, stats)
        self.register_buffer("mean3", m3.reshape(len(self.variables_3d), -1, 1, 1))
        self.register_buffer("std3", s3.reshape(len(self.variables_3d), -1, 1, 1))
        self.register_buffer("mean2", m2.reshape(len(self.variables_2d), 1, 1))
        self.register_buffer("std2", s2.reshape(len(self.variables_2d), 1, 1))

    @staticmethod
    def _table(names: Sequence[str], stats: Mapping[str, Stats | Mapping[str, object]]
               ) -> tuple[Tensor, Tensor]:
        if not names:
            return torch.zeros(0, 1), torch.ones(0, 1)
        st = {n: s if isinstance(s, Stats) else Stats.from_dict(s)
              for n, s in stats.items() if n in names}
        mean = np.array([np.atleast_1d(np.asarray(st[n].mean, float)) for n in names])
        std = np.array([np.atleast_1d(np.asarray(st[n].std, float)) for n in names])
        bad = ~np.isfinite(mean) | ~np.isfinite(std)
        mean = np.where(bad, 0.0, mean)
        std = np.where(bad, 1.0, std)
        std = np.maximum(std, np.maximum(1e-6 * np.abs(mean), 1e-30))
        return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def norm3(self, x: Tensor) -> Tensor:
        return (x - self.mean3) / self.std3

    def denorm3(self, z: Tensor) -> Tensor:
        return z * self.std3 + self.mean3

    def norm2(self, x: Tensor) -> Tensor:
        return (x - self.mean2) / self.std2

    def denorm2(self, z: Tensor) -> Tensor:
        return z * self.std2 + self.mean2


def _gather_lon(x: Tensor, index: Tensor) -> Tensor:
    """``out[b, ..., j] = x[b, ..., index[b, j]]`` for ``x`` ``(B, ..., W)``."""
    shape = [x.shape[0]] + [1] * (x.ndim - 2) + [x.shape[-1]]
    return torch.gather(x, -1, index.reshape(shape).expand_as(x))


class LongitudeRoll(nn.Module):
    """Rotate each non-tidally-locked sample by a random whole number of grid cells."""

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None
                ) -> dict[str, Tensor]:
        x3 = batch["x3"]
        b, nlon = x3.shape[0], x3.shape[-1]
        shift = torch.randint(0, nlon, (b,), generator=generator, device=x3.device)
        shift = torch.where(batch["tidally_locked"].bool(), torch.zeros_like(shift), shift)
        index = (torch.arange(nlon, device=x3.device).unsqueeze(0) - shift.unsqueeze(1)) % nlon
        out = dict(batch)
        for key in ("x3", "m3", "x2", "m2"):
            out[key] = _gather_lon(batch[key], index)
        return out


class HemisphericMirror(nn.Module):
    """Flip latitude with probability ``p`` per sample, negating ``va``.

    ``va_offset`` ``(L,)`` is ``-2 mean/std`` of ``va``, so that the physical
    sign change ``va -> -va`` reads ``z -> -z + va_offset`` in normalised units.
    """

    def __init__(self, va_channel: int | None, va_offset: Tensor | None, p: float = 0.5) -> None:
        super().__init__()
        self.va_channel = va_channel
        self.p = p
        off = va_offset if va_offset is not None else torch.zeros(1)
        self.register_buffer("va_offset", off.reshape(-1, 1, 1).float())

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None
                ) -> dict[str, Tensor]:
        x3 = batch["x3"]
        flip = torch.rand(x3.shape[0], generator=generator, device=x3.device) < self.p
        out = dict(batch)
        for key in ("x3", "m3", "x2", "m2"):
            v = batch[key]
            sel = flip.reshape(-1, *([1] * (v.ndim - 1)))
            out[key] = torch.where(sel, v.flip(-2), v)
        if self.va_channel is not None:
            c = self.va_channel
            va, m = out["x3"][:, c], out["m3"][:, c]
            neg = torch.where(m, -va + self.va_offset, va)
            x3 = out["x3"].clone()
            x3[:, c] = torch.where(flip.reshape(-1, 1, 1, 1), neg, va)
            out["x3"] = x3
        return out


class FieldNoise(nn.Module):
    """Add ``sigma`` standard deviations of Gaussian noise to every valid point."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None
                ) -> dict[str, Tensor]:
        out = dict(batch)
        for x, m in (("x3", "m3"), ("x2", "m2")):
            noise = torch.randn(batch[x].shape, generator=generator, device=batch[x].device)
            out[x] = batch[x] + self.sigma * noise * batch[m].to(batch[x].dtype)
        return out


class Augmentation(nn.Module):
    """The training augmentations in order: roll, mirror, noise (each optional)."""

    def __init__(self, roll: bool, mirror: bool, noise_std: float, va_channel: int | None,
                 va_offset: Tensor | None) -> None:
        super().__init__()
        steps: list[nn.Module] = []
        if roll:
            steps.append(LongitudeRoll())
        if mirror:
            steps.append(HemisphericMirror(va_channel, va_offset))
        if noise_std > 0:
            steps.append(FieldNoise(noise_std))
        self.steps = nn.ModuleList(steps)

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None
                ) -> dict[str, Tensor]:
        for step in self.steps:
            batch = step(batch, generator)
        return batch
