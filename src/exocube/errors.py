"""The exocube exception hierarchy.

Every error exocube raises on purpose derives from :class:`ExocubeError`, so a
caller can catch them all at once, and the CLI prints them without a traceback.
Messages say what was wrong, the offending value, and what to do about it.

ExocubeError
├── ConfigError(ValueError)          settings, TOML files, environment
├── ParameterError(ValueError)       a planet/star parameter outside its valid range
├── InputDataError(ValueError)       an input file or table that cannot be used
├── CatalogError                     catalogue database problems
├── StoreError                       cube store (Zarr) problems
├── ModelUnavailableError            no trained model can answer a prediction mode
├── TransferError                    a download that failed for good
│   └── ChecksumError                bytes that do not match the expected hash/size
├── ParallelError                    the Dask cluster could not be reached or started
└── SimulationError                  a GCM run could not be prepared or driven
    └── MissingToolError             a system program (gfortran, mpiexec, sbatch) is missing
"""

from __future__ import annotations


class ExocubeError(Exception):
    """Root of every error exocube raises on purpose."""


class ConfigError(ExocubeError, ValueError):
    """Settings or a configuration file are invalid."""


class ParameterError(ExocubeError, ValueError):
    """A physical parameter is missing, not finite, or outside its valid range."""

    def __init__(self, field: str, value: object, valid: str, hint: str = "") -> None:
        self.field = field
        self.value = value
        self.valid = valid
        self.hint = hint
        msg = f"{field}={value!r} is invalid: expected {valid}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __reduce__(self) -> tuple[type, tuple[str, object, str, str]]:
        # Rebuild from the fields, so the error survives pickling (Dask workers).
        return (type(self), (self.field, self.value, self.valid, self.hint))


class InputDataError(ExocubeError, ValueError):
    """An input file or table is unreadable or lacks what is needed."""


class CatalogError(ExocubeError):
    """The catalogue database cannot be reached, migrated or queried."""


class StoreError(ExocubeError):
    """A cube store is missing, inconsistent, or cannot be written."""


class ModelUnavailableError(ExocubeError):
    """No trained model can answer the requested prediction mode (the message says why)."""


class TransferError(ExocubeError):
    """A transfer failed and will not be retried."""


class ChecksumError(TransferError):
    """Downloaded bytes do not match the expected size or hash."""


class ParallelError(ExocubeError):
    """The parallel engine (Dask) could not be started or reached."""


class SimulationError(ExocubeError):
    """A GCM run could not be prepared, started or driven (not a model crash: those are
    recorded as failed runs)."""


class MissingToolError(SimulationError):
    """A system program is not installed; the message names the Debian package."""
