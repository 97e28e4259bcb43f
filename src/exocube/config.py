"""Settings: one typed object, read from ``EXOCUBE_*`` environment variables and
an optional TOML file.

Precedence (highest first): keyword arguments, environment variables
(``EXOCUBE_HOME``, ``EXOCUBE_DATABASE_URL``, ``EXOCUBE_S3__ENDPOINT_URL``, ...),
the TOML file, defaults. The TOML file is ``$EXOCUBE_CONFIG`` when set, else
``<home>/config.toml`` when it exists. An unknown key in the file is an error
that names the key.

S3 credentials are never stored by exocube: they come from the standard AWS
environment variables and config files, read by botocore/s3fs.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exocube.acquire.options import AcquireOptions
from exocube.errors import ConfigError

DEFAULT_HOME = Path("~/.exocube")


class S3Options(BaseModel):
    """Where and how to reach S3. Credentials are not settings: botocore finds them."""

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = None
    region: str | None = None
    anon: bool = False

    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` / fsspec."""
        opts: dict[str, Any] = {"anon": self.anon}
        client: dict[str, Any] = {}
        if self.endpoint_url:
            client["endpoint_url"] = self.endpoint_url
        if self.region:
            client["region_name"] = self.region
        if client:
            opts["client_kwargs"] = client
        return opts


class DaskOptions(BaseModel):
    """How the ``parallel`` module gets a Dask client."""

    model_config = ConfigDict(extra="forbid")

    scheduler_address: str | None = None
    n_workers: int = Field(default=2, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = "4GiB"


class IngestOptions(BaseModel):
    """Defaults of ``exocube ingest`` for new cube stores."""

    model_config = ConfigDict(extra="forbid")

    #: pressure levels of new stores in the ``--levels`` syntax (exocube.cubes.levels),
    #: e.g. "log:3e5:1e2:24"; None: the first file's levels, else the default grid's
    levels: str | None = None

    @model_validator(mode="after")
    def _check_levels(self) -> IngestOptions:
        if self.levels is not None:
            from exocube.cubes.levels import parse_levels  # cubes imports config

            parse_levels(self.levels)
        return self


class ServeOptions(BaseModel):
    """The prediction service (``exocube serve``) and the surrogate's domain check."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    cache_size: int = Field(default=1024, ge=0)
    cache_max_mb: float = Field(default=256.0, ge=0.0)
    max_batch: int = Field(default=32, ge=1)
    max_batch_fields: int = Field(default=4, ge=1)
    max_wait_ms: float = Field(default=0.0, ge=0.0)
    max_queue: int = Field(default=64, ge=1)
    max_body_bytes: int = Field(default=65536, ge=1024)
    max_hull_distance: float = Field(default=0.5, gt=0.0)
    torch_threads: int = Field(default=1, ge=1)


class Settings(BaseSettings):
    """All exocube settings."""

    model_config = SettingsConfigDict(
        env_prefix="EXOCUBE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = DEFAULT_HOME
    database_url: str | None = None
    store_root: Path | None = None
    s3: S3Options = S3Options()
    dask: DaskOptions = DaskOptions()
    acquire: AcquireOptions = AcquireOptions()
    api_keys: list[SecretStr] = []
    serve: ServeOptions = ServeOptions()
    ingest: IngestOptions = IngestOptions()

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        self.home = self.home.expanduser()
        if self.store_root is None:
            self.store_root = self.home / "stores"
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.home / 'catalog.sqlite'}"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``EXOCUBE_CONFIG`` or ``<home>/config.toml``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_path()
        if path is None:
            return {}
        return read_toml(path)


def config_path() -> Path | None:
    """The TOML file to read, or ``None`` when there is none."""
    explicit = os.environ.get("EXOCUBE_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"EXOCUBE_CONFIG={explicit!r} does not name a file; create it or unset the variable"
            )
        return path
    home = Path(os.environ.get("EXOCUBE_HOME", str(DEFAULT_HOME))).expanduser()
    path = home / "config.toml"
    return path if path.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a settings TOML file, with a clear error for bad syntax."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation failures into :class:`ConfigError`.

    An unknown key (in the TOML file or passed here) is named in the message.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown setting {where!r}")
            else:
                problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        source = config_path()
        origin = f" (settings file: {source})" if source else ""
        raise ConfigError(
            "invalid exocube settings" + origin + ": " + "; ".join(problems)
            + ". Fix or remove these keys; see docs/configuration.md for the valid ones."
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Call ``get_settings.cache_clear()`` to re-read."""
    return load_settings()
