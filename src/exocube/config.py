"""Settings: one typed object, read from ``EXOCUBE_*`` environment variables and
an optional TOML file.

Precedence (highest first): keyword arguments, environment variables
(``EXOCUBE_HOME``, ``EXOCUBE_DATABASE_URL``, ``EXOCUBE_S3__ENDPOINT_URL``, ...),
the TOML file, defaults. The TOML file is ``$EXOCUBE_CONFIG`` when set, else
``<home>/config.toml`` when it exists. An unknown key in the file is an error
that names the key.

Every section is defined here, the acquisition ones included, so this root
module imports no stage.

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

from exocube.errors import ConfigError
from exocube.grid import parse_levels

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

    #: pressure levels of new stores in the ``--levels`` syntax (exocube.grid.parse_levels),
    #: e.g. "log:3e5:1e2:24"; None: the first file's levels, else the default grid's
    levels: str | None = None

    @model_validator(mode="after")
    def _check_levels(self) -> IngestOptions:
        if self.levels is not None:
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


# Acquisition (``[acquire]``, ``[acquire.kegg]`` ...; ``EXOCUBE_ACQUIRE__READ_TIMEOUT=30``,
# ``EXOCUBE_ACQUIRE__KEGG__BASE_URL=...``): transfers, politeness, quality, and one
# block per source. The acquire stage imports them through exocube.acquire.options.

PSCOMPPARS_COLUMNS: tuple[str, ...] = (
    "pl_name", "hostname", "sy_snum", "sy_pnum", "discoverymethod", "disc_year",
    "disc_facility", "pl_controv_flag",
    "pl_orbper", "pl_orbpererr1", "pl_orbpererr2", "pl_orbperlim",
    "pl_orbsmax", "pl_orbsmaxerr1", "pl_orbsmaxerr2", "pl_orbsmaxlim",
    "pl_rade", "pl_radeerr1", "pl_radeerr2", "pl_radelim",
    "pl_radj", "pl_radjerr1", "pl_radjerr2", "pl_radjlim",
    "pl_bmasse", "pl_bmasseerr1", "pl_bmasseerr2", "pl_bmasselim",
    "pl_bmassj", "pl_bmassjerr1", "pl_bmassjerr2", "pl_bmassjlim", "pl_bmassprov",
    "pl_orbeccen", "pl_orbeccenerr1", "pl_orbeccenerr2", "pl_orbeccenlim",
    "pl_insol", "pl_insolerr1", "pl_insolerr2", "pl_insollim",
    "pl_eqt", "pl_eqterr1", "pl_eqterr2", "pl_eqtlim", "ttv_flag", "st_spectype",
    "st_teff", "st_tefferr1", "st_tefferr2", "st_tefflim",
    "st_rad", "st_raderr1", "st_raderr2", "st_radlim",
    "st_mass", "st_masserr1", "st_masserr2", "st_masslim",
    "st_met", "st_meterr1", "st_meterr2", "st_metlim", "st_metratio",
    "st_logg", "st_loggerr1", "st_loggerr2", "st_logglim",
    "rastr", "ra", "decstr", "dec", "sy_dist", "sy_disterr1", "sy_disterr2",
    "sy_vmag", "sy_vmagerr1", "sy_vmagerr2", "sy_kmag", "sy_kmagerr1", "sy_kmagerr2",
    "sy_gaiamag", "sy_gaiamagerr1", "sy_gaiamagerr2",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NasaExoplanetArchiveOptions(_Strict):
    """NASA Exoplanet Archive TAP service (astronomy)."""

    base_url: str = "https://exoplanetarchive.ipac.caltech.edu"
    table: str = "pscomppars"
    columns: list[str] = list(PSCOMPPARS_COLUMNS)


class MastOptions(_Strict):
    """MAST Mashup API (JWST/HST products; astrophysics)."""

    base_url: str = "https://mast.stsci.edu"
    obs_collection: str = "JWST"
    target_name: str | None = "WASP-39"
    proposal_id: str | None = None  # a program (e.g. "3149"); None: any
    instrument_name: str | None = None
    product_subgroups: list[str] = ["X1D"]
    max_observations: int = Field(default=5, ge=1)


class PhoenixOptions(_Strict):
    """PHOENIX high-resolution synthetic stellar spectra (spectroscopy)."""

    base_url: str = "https://phoenix.astro.physik.uni-goettingen.de/data/HiResFITS"
    library: str = "PHOENIX-ACES-AGSS-COND-2011"
    teff: list[int] = [5800]
    logg: list[float] = [4.5]
    feh: list[float] = [0.0]
    include_wavelength: bool = True


class KeggOptions(_Strict):
    """KEGG REST API (astrobiology: metabolic pathways and modules)."""

    base_url: str = "https://rest.kegg.jp"
    database: str = "pathway"
    entries: list[str] = []
    max_entries: int = Field(default=25, ge=1)


class Genomes1000Options(_Strict):
    """1000 Genomes Project data over FTP or HTTPS (genomics)."""

    base_url: str = "ftp://ftp.1000genomes.ebi.ac.uk/vol1/ftp"
    index: str = "current.tree"
    include: list[str] = ["release/20130502/ALL.chrY.*"]


class GcmOutputsOptions(_Strict):
    """Published GCM output listings: ROCKE-3D, ExoPlaSim (climate science)."""

    listings: list[str] = [
        "https://portal.nccs.nasa.gov/GISS_modelE/ROCKE-3D/publication-supplements/",
    ]
    include: list[str] = ["*.nc"]
    max_files: int = Field(default=20, ge=1)


class GeocarbOptions(_Strict):
    """A paleoclimate CO2 reconstruction table from NOAA NCEI Paleo (geochemistry)."""

    url: str = (
        "https://www.ncei.noaa.gov/pub/data/paleo/climate_forcing/trace_gases/geocarb3-co2.txt"
    )
    age_column: str = "age_myr"
    co2_column: str = "co2_ppm"


PREM_COLUMNS: tuple[str, ...] = (
    "radius", "depth", "density", "Vpv", "Vph", "Vsv", "Vsh", "eta", "Q-mu", "Q-kappa",
)


class IrisEmcModel(_Strict):
    """One reference-model table of the IRIS EMC: its path and its column names."""

    path: str
    columns: list[str] = list(PREM_COLUMNS)
    header_lines: int = Field(default=0, ge=0)


class IrisEmcOptions(_Strict):
    """IRIS Earth Model Collaboration reference models (planetary interiors)."""

    base_url: str = "https://ds.iris.edu/files/products/emc/data"
    models: list[IrisEmcModel] = [IrisEmcModel(path="PREM/PREM_1s.csv")]
    surface_radius_km: float = Field(default=6371.0, gt=0)
    radius_tolerance_km: float = Field(default=5.0, ge=0)
    planet_mass_kg: float | None = Field(default=5.9722e24, gt=0)
    mass_tolerance: float = Field(default=0.01, gt=0, lt=1)


class PypiOptions(_Strict):
    """PyPI JSON API: release metadata and file digests of the tools a run used
    (software/ops metadata)."""

    base_url: str = "https://pypi.org"
    packages: list[str] = ["numpy", "scipy", "pandas", "xarray", "netCDF4", "zarr", "httpx",
                           "astropy", "torch"]


class AcquireOptions(_Strict):
    """How ``exocube acquire`` talks to archives and judges what it gets."""

    destination: str | None = None
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    write_timeout: float = Field(default=60.0, gt=0)
    pool_timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    # planning gives up on a host it cannot connect to (refused, unknown name) after
    # this many attempts; timeouts and 5xx keep max_attempts
    plan_connect_attempts: int = Field(default=1, ge=1)
    # seconds one source's planning may take in all (a server trickling its answer
    # never trips read_timeout); then the source is listed as not planned
    plan_timeout: float = Field(default=300.0, gt=0)
    # bytes of one planning answer (index, listing, query result), read into memory
    plan_max_bytes: int = Field(default=1 << 30, ge=1024)
    backoff_base: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    retry_after_max: float = Field(default=300.0, ge=0)
    requests_per_second: float = Field(default=10.0, gt=0)
    burst: int = Field(default=10, ge=1)
    connections_per_host: int = Field(default=4, ge=1)
    host_requests_per_second: dict[str, float] = {"rest.kegg.jp": 3.0}
    max_parallel_files: int = Field(default=8, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown: float = Field(default=60.0, ge=0)
    resume_min_bytes: int = Field(default=1 << 20, ge=0)
    chunk_size: int = Field(default=1 << 20, ge=1024)
    read_size: int = Field(default=1 << 20, ge=4096)
    quality_threshold: float = Field(default=0.5, ge=0, le=1)

    nasa_exoplanet_archive: NasaExoplanetArchiveOptions = NasaExoplanetArchiveOptions()
    mast: MastOptions = MastOptions()
    phoenix: PhoenixOptions = PhoenixOptions()
    kegg: KeggOptions = KeggOptions()
    genomes1000: Genomes1000Options = Genomes1000Options()
    gcm_outputs: GcmOutputsOptions = GcmOutputsOptions()
    geocarb: GeocarbOptions = GeocarbOptions()
    iris_emc: IrisEmcOptions = IrisEmcOptions()
    pypi: PypiOptions = PypiOptions()


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
    jax_compile_cache: bool = True

    @property
    def jax_cache_dir(self) -> Path | None:
        """Where the IFU commands keep JAX's compiled programs (None: off)."""
        return self.home / "cache" / "jax" if self.jax_compile_cache else None

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
