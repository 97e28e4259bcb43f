"""Baselines on the same splits as the U-Net.

All baselines map the encoded parameter vector (see
:meth:`~exocube.ml.spec.ParamTable.encode`) to the normalised fields of a
sample, flattened; below-ground points are filled with 0 (the store mean) for
fitting and excluded when scoring.

climatology
    the training-set mean of every grid point (mask-aware): what a model that
    ignores the parameters would predict.
pca_ridge
    PCA of the training fields, then ridge regression (alpha chosen by
    leave-one-out cross-validation) from parameters to the leading components.
pca_gp
    PCA, then one Gaussian process per leading component with an anisotropic
    (ARD) RBF kernel plus white noise, hyper-parameters by maximum marginal
    likelihood. GP emulators are the strongest published baseline for
    emulating exoplanet GCMs from few runs.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import RidgeCV

from exocube.errors import ConfigError, StoreError
from exocube.ml.spec import ParamScale, encode_with

log = logging.getLogger(__name__)

Array = NDArray[np.float64]


@dataclass
class Samples:
    """The samples of one split, stacked: normalised fields with masks, and parameters."""

    x3: NDArray[np.float32]
    m3: NDArray[np.bool_]
    x2: NDArray[np.float32]
    m2: NDArray[np.bool_]
    params: Array
    locked: NDArray[np.bool_]
    gravity: Array
    run_index: NDArray[np.int64]
    r_gas: Array
    scales: tuple[ParamScale, ...]  # how the model encodes ``params``

    @property
    def features(self) -> Array:
        return encode_with(self.scales, torch.tensor(self.params),
                           torch.tensor(self.locked)).numpy()

    def flat(self) -> tuple[Array, NDArray[np.bool_]]:
        n = len(self.params)
        y = np.concatenate([self.x3.reshape(n, -1), self.x2.reshape(n, -1)], axis=1)
        m = np.concatenate([self.m3.reshape(n, -1), self.m2.reshape(n, -1)], axis=1)
        return y.astype(np.float64), m

    def unflat(self, y: Array) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        n, k = len(y), self.x3[0].size
        return (y[:, :k].reshape(n, *self.x3.shape[1:]).astype(np.float32),
                y[:, k:].reshape(n, *self.x2.shape[1:]).astype(np.float32))


def collect(dataset: torch.utils.data.Dataset) -> Samples:
    """Stack every sample of a :class:`~exocube.ml.datamodule.RunWindowDataset`."""
    items = [dataset[i] for i in range(len(dataset))]
    if not items:
        raise ConfigError("the split has no samples; check the split fractions")

    def stack(key: str) -> np.ndarray:
        return torch.stack([it[key] for it in items]).numpy()

    return Samples(stack("x3"), stack("m3"), stack("x2"), stack("m2"),
                   stack("params").astype(np.float64), stack("tidally_locked"),
                   stack("gravity").astype(np.float64), stack("run_index"),
                   stack("r_gas").astype(np.float64), dataset.spec.params.scales)


class Climatology:
    """The mask-aware training mean of every grid point."""

    name = "climatology"

    def fit(self, train: Samples) -> Climatology:
        y, m = train.flat()
        self.mean_ = (y * m).sum(0) / np.maximum(m.sum(0), 1)
        return self

    def predict(self, features: Array) -> Array:
        return np.broadcast_to(self.mean_, (len(features), self.mean_.size)).copy()


class PCARegression:
    """PCA of the fields, then a regression from parameters to the leading components."""

    def __init__(self, regressor: str, n_components: int = 16, seed: int = 0) -> None:
        if regressor not in ("ridge", "gp"):
            raise ConfigError(f"regressor={regressor!r}; use 'ridge' or 'gp'")
        self.regressor, self.n_components, self.seed = regressor, n_components, seed
        self.name = f"pca_{regressor}"

    def fit(self, train: Samples) -> PCARegression:
        y, _ = train.flat()
        x = train.features
        if len(y) < 3:
            raise StoreError(f"{self.name} needs at least 3 training samples, got {len(y)}; "
                             "ingest more runs or lower val_fraction/test_fraction")
        k = max(1, min(self.n_components, len(y) - 1))
        self.pca_ = PCA(n_components=k, random_state=self.seed).fit(y)
        z = self.pca_.transform(y)
        log.info("%s: %d components keep %.1f %% of the variance", self.name, k,
                 100 * self.pca_.explained_variance_ratio_.sum())
        if self.regressor == "ridge":
            self.models_ = [RidgeCV(alphas=np.logspace(-4, 3, 15)).fit(x, z)]
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                self.models_ = [self._gp(x.shape[1]).fit(x, z[:, i]) for i in range(k)]
            if caught:  # a parameter that does not matter drives its length scale to a bound
                log.info("pca_gp: %d kernel hyper-parameters ended at a bound", len(caught))
        return self

    def _gp(self, d: int) -> GaussianProcessRegressor:
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * RBF(length_scale=np.ones(d), length_scale_bounds=(1e-2, 1e3))
                  + WhiteKernel(1e-2, (1e-8, 1e1)))
        return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1,
                                        random_state=self.seed)

    def predict(self, features: Array) -> Array:
        if self.regressor == "ridge":
            z = self.models_[0].predict(features)
        else:
            z = np.stack([m.predict(features) for m in self.models_], axis=1)
        return self.pca_.inverse_transform(z)


def make_baselines(n_components: int = 16, seed: int = 0) -> list[Climatology | PCARegression]:
    """The three baselines, unfitted."""
    return [Climatology(), PCARegression("ridge", n_components, seed),
            PCARegression("gp", n_components, seed)]
