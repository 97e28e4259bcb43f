"""Where acquired files end up: a local directory or an S3 prefix (fsspec).

Downloads always land first in a local staging directory as ``.part`` files.
For a local destination the staging directory is the destination itself, so the
final step is an atomic :func:`os.replace`. For S3, the verified file is
uploaded with one PUT (multipart for large files), which S3 makes visible only
once complete, so no partial object ever appears under a final key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from exocube.acquire.names import QUARANTINE, inside
from exocube.acquire.partial import PartFile
from exocube.errors import ConfigError, TransferError

log = logging.getLogger(__name__)


@dataclass
class Destination:
    """A local directory or an ``s3://bucket/prefix``; ``staging`` holds ``.part`` files."""

    root: str
    staging: Path
    storage_options: dict[str, Any]

    @classmethod
    def from_string(
        cls, root: str, staging: Path, storage_options: dict[str, Any] | None = None
    ) -> Destination:
        if "://" in root and not root.startswith(("s3://", "file://")):
            raise ConfigError(
                f"destination {root!r} is not supported; use a local directory or s3://bucket/prefix"
            )
        if root.startswith("file://"):
            root = root[len("file://"):]
        if not root.startswith("s3://"):
            root = str(Path(root).expanduser().resolve())
            staging = Path(root)
        return cls(root.rstrip("/"), staging, storage_options or {})

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def uri(self, relpath: str, quarantined: bool = False) -> str:
        """The final (or quarantine) location of ``relpath``, checked to stay below the
        root (or its quarantine folder); :class:`~exocube.errors.UnsafeNameError` if not."""
        if quarantined:
            return inside(f"{self.root}/{QUARANTINE}", relpath)
        return inside(self.root, relpath)

    def part_for(self, relpath: str) -> PartFile:
        """The staging ``.part`` file for ``relpath``, checked to stay below the staging
        directory."""
        return PartFile(Path(inside(str(self.staging), relpath)))

    def _fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem("s3", **self.storage_options) if self.is_s3 else (
            fsspec.filesystem("file")
        )

    def size(self, relpath: str, quarantined: bool = False) -> int | None:
        """Size of the final (or quarantined) file, or ``None`` when it does not exist."""
        uri = self.uri(relpath, quarantined)
        if not self.is_s3:
            path = Path(uri)
            return path.stat().st_size if path.is_file() else None
        fs = self._fs()
        fs.invalidate_cache()
        return fs.size(uri) if fs.exists(uri) else None

    def publish(self, part: PartFile, relpath: str, quarantined: bool = False) -> str:
        """Move a verified part to its final (or quarantine) name; return the URI."""
        uri = self.uri(relpath, quarantined)
        if not self.is_s3:
            part.promote(Path(uri))
            return uri
        try:
            self._fs().put_file(str(part.part), uri)
        except OSError as exc:
            raise TransferError(
                f"upload of {part.part} to {uri} failed: {exc}. The verified file stays in "
                f"{part.part}; check the S3 endpoint and credentials, then resume the run"
            ) from exc
        part.discard()
        return uri
