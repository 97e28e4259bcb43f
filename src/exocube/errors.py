"""The exocube exception hierarchy.

Every error exocube raises on purpose derives from :class:`ExocubeError`, so a
caller can catch them all at once, and the CLI prints them without a traceback.
Messages say what was wrong, the offending value, and what to do about it.

ExocubeError
├── ConfigError(ValueError)          settings, TOML files, environment
├── ParameterError(ValueError)       a planet/star parameter outside its valid range
├── InputDataError(ValueError)       an input file or table that cannot be used
│   └── UnsafeNameError              a remote name that would not stay below the destination
├── CatalogError                     catalogue database problems
├── StoreError                       cube store (Zarr) problems
├── ModelUnavailableError            no trained model can answer a prediction mode
├── ServiceBusyError                 the prediction service's queue is full; retry later
├── TransferError                    a download that failed for good
│   ├── ChecksumError                bytes that do not match the expected hash/size
│   └── QuotaExceededError           a transfer stopped at the run's download quota
├── ParallelError                    the Dask cluster could not be reached or started
├── SimulationError                  a GCM run could not be prepared or driven
│   └── MissingToolError             a system program (gfortran, mpiexec, sbatch) is missing
└── IFUError                         the IFU stage (exocube.ifu)
    ├── CubeFormatError(InputDataError)  not an s3d cube, bad WCS, all-NaN data
    ├── CubeChecksumError                CHECKSUM/DATASUM of an HDU do not match
    ├── LineCoverageError(ValueError)    requested lines outside the cube's wavelengths
    └── ModelParameterError(ParameterError)  unknown or out-of-range model parameter
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


class UnsafeNameError(InputDataError):
    """A name from the remote side (index line, listing, manifest) that cannot be a
    relative path below the destination; the message names it and the reason."""

    def __init__(self, name: str, reason: str, source: str = "") -> None:
        self.name = name
        self.reason = reason
        self.source = source
        where = f"source {source}: " if source else ""
        super().__init__(
            f"{where}refused the remote name {name!r}: {reason}. The archive's index or "
            "listing is malformed or hostile; nothing is written under that name"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (self.name, self.reason, self.source))


class CatalogError(ExocubeError):
    """The catalogue database cannot be reached, migrated or queried."""


class StoreError(ExocubeError):
    """A cube store is missing, inconsistent, or cannot be written."""


class ModelUnavailableError(ExocubeError):
    """No trained model can answer the requested prediction mode (the message says why)."""


class ServiceBusyError(ExocubeError):
    """The prediction service has as many requests waiting as it queues; retry after
    ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return (type(self), (str(self), self.retry_after_s))


class TransferError(ExocubeError):
    """A transfer failed and will not be retried."""


class ChecksumError(TransferError):
    """Downloaded bytes do not match the expected size or hash."""


class QuotaExceededError(TransferError):
    """A transfer stopped because its next bytes would pass the run's download quota;
    its part file and sidecar are kept for a later run with a larger quota."""

    def __init__(self, url: str, part: str, kept: int, message: str) -> None:
        self.url = url
        self.part = part
        self.kept = kept
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str, int, str]]:
        return (type(self), (self.url, self.part, self.kept, str(self)))


class ParallelError(ExocubeError):
    """The parallel engine (Dask) could not be started or reached."""


class SimulationError(ExocubeError):
    """A GCM run could not be prepared, started or driven (not a model crash: those are
    recorded as failed runs)."""


class MissingToolError(SimulationError):
    """A system program is not installed; the message names the Debian package."""


class IFUError(ExocubeError):
    """The IFU stage (:mod:`exocube.ifu`) cannot read, model or write a cube."""


class CubeFormatError(IFUError, InputDataError):
    """A FITS file is not a usable s3d cube or drizzled image (the message names the HDU)."""


class CubeChecksumError(IFUError):
    """An HDU's CHECKSUM or DATASUM does not match its bytes: the file is corrupted."""


class LineCoverageError(IFUError, ValueError):
    """Requested emission lines fall outside the cube's wavelength range."""


class ModelParameterError(IFUError, ParameterError):
    """A forward-model parameter is unknown, missing, not finite or out of its range."""
