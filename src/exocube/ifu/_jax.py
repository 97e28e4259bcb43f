"""JAX, pinned to the CPU and quiet, imported through here by every IFU module.

Setting ``JAX_PLATFORMS=cpu`` before the first import keeps JAX from probing
for accelerators (and from logging that it found none); a caller who set
``JAX_PLATFORMS`` already keeps their choice. JAX's own loggers are held at
WARNING so that exocube's output carries no banners.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _name in ("jax", "jax._src.xla_bridge", "absl"):
    logging.getLogger(_name).setLevel(logging.WARNING)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.scipy.special import erf  # noqa: E402

__all__ = ["erf", "jax", "jnp"]
