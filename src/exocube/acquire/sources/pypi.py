"""PyPI release metadata of the tools a run used (domain: software_ops).

The PyPI JSON API answers ``GET <base>/pypi/<project>/<version>/json`` with the
release's metadata (``info``) and its files (``urls``: file name, size, upload
time and ``digests`` with the sha256). Each entry of ``acquire.pypi.packages``
is ``name==version`` or a bare ``name``, which means the version installed in
the running environment (what a run actually used). A local version label
(``2.13.0+cpu``) is not on PyPI: the public release (``2.13.0``) is fetched and
flagged. Projects are named by their PEP 503 normalised name. PyPI answers 404
for a project or version it does not host: that is "no result" (skipped).

The stored JSON is the provenance record: :func:`release_digests` reads the
sha256 of every release file from it. Validation checks that the JSON parses,
has ``info`` and ``urls``, is for the project and version requested (PyPI
answers a different one when the URL lacks the version), and that every file
has a 64-hex sha256 (and a 32-hex MD5 when given). Yanked releases and known
vulnerabilities are flagged.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.errors import ConfigError

NAME = "pypi"
DOMAIN = "software_ops"
DESCRIPTION = "PyPI JSON API: release metadata and file sha256 of the tools a run used"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only

SHA256 = re.compile(r"[0-9a-f]{64}")
MD5 = re.compile(r"[0-9a-f]{32}")
PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def base_url(opts: AcquireOptions) -> str:
    return opts.pypi.base_url


def normalise(name: str) -> str:
    """PEP 503 normalised project name (``netCDF4`` -> ``netcdf4``, ``a_b.c`` -> ``a-b-c``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(spec: str) -> tuple[str, str, str | None]:
    """``(project, public version, installed version or None)`` for one entry."""
    name, sep, version = (s.strip() for s in spec.partition("=="))
    if not PROJECT.fullmatch(name):
        raise ConfigError(f"acquire.pypi.packages: {spec!r} is not 'name' or "
                          "'name==version'")
    installed = None
    if not sep:
        try:
            installed = version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(f"acquire.pypi.packages: {name!r} is not installed here; pin "
                              f"it as '{name}==VERSION'") from None
    try:
        public = Version(version).public
    except InvalidVersion:
        raise ConfigError(f"acquire.pypi.packages: {spec!r}: {version!r} is not a PEP 440 "
                          "version") from None
    return normalise(name), public, installed


def release_url(opts: AcquireOptions, project: str, version: str) -> str:
    return f"{opts.pypi.base_url.rstrip('/')}/pypi/{project}/{version}/json"


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    files: dict[str, PlannedFile] = {}
    for spec in ctx.opts.pypi.packages:  # a release named twice is planned once (first wins)
        project, version, installed = resolve(spec)
        relpath = f"{NAME}/{project}/{version}.json"
        files.setdefault(relpath, PlannedFile(
            source=NAME, domain=DOMAIN, relpath=relpath,
            url=release_url(ctx.opts, project, version), media_type="application/json",
            kind="json", missing_ok=True,
            meta={"project": project, "version": version, "installed": installed}))
    return list(files.values())


def release_digests(path: Path) -> dict[str, str]:
    """``{file name: sha256}`` of the release files in a stored answer."""
    body = json.loads(path.read_text(encoding="utf-8"))
    return {u["filename"]: u["digests"]["sha256"] for u in body["urls"]}


def validate(path: Path, item: PlannedFile) -> QualityReport:
    report = QualityReport()
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        report.error("pypi.json", f"not a JSON document: {exc}", penalty=1.0)
        return report
    if not (isinstance(body, dict) and isinstance(body.get("info"), dict)
            and isinstance(body.get("urls"), list)):
        report.error("pypi.schema", "not a PyPI release answer: needs an 'info' object and a "
                     "'urls' list", penalty=1.0)
        return report
    _check_identity(body["info"], item.meta, report)
    _check_files(body["urls"], report)
    _check_status(body, item.meta, report)
    return report


def _check_identity(info: dict[str, Any], meta: dict[str, Any], report: QualityReport) -> None:
    name = str(info.get("name", ""))
    if normalise(name) != meta["project"]:
        report.error("pypi.project", f"answer is for project {name!r}, requested "
                     f"{meta['project']!r}", penalty=1.0)
    got = str(info.get("version", ""))
    try:
        same = Version(got) == Version(meta["version"])
    except InvalidVersion:
        same = False
    if not same:
        report.error("pypi.version", f"answer is for version {got!r}, requested "
                     f"{meta['version']!r} (the URL must be /pypi/<project>/<version>/json; "
                     "without the version PyPI answers the latest release)", penalty=1.0)


def _check_files(urls: list[Any], report: QualityReport) -> None:
    if not urls:
        report.flag("pypi.files", "the release has no files (nothing to record digests of)",
                    penalty=0.05)
    bad: list[str] = []
    names: list[str] = []
    for u in urls:
        fname = u.get("filename") if isinstance(u, dict) else None
        digests = u.get("digests") if isinstance(u, dict) else None
        if not isinstance(fname, str) or not isinstance(digests, dict):
            bad.append(f"{u!r:.60} (no filename or digests)")
            continue
        names.append(fname)
        sha = digests.get("sha256")
        if not (isinstance(sha, str) and SHA256.fullmatch(sha)):
            bad.append(f"{fname}: sha256 {sha!r}")
        md5 = digests.get("md5", u.get("md5_digest"))
        if md5 is not None and not (isinstance(md5, str) and MD5.fullmatch(md5)):
            bad.append(f"{fname}: md5 {md5!r}")
        if not isinstance(u.get("size"), int) or u["size"] < 0:
            bad.append(f"{fname}: size {u.get('size')!r}")
    if bad:
        report.error("pypi.digests", f"{len(bad)} release file entries are malformed, e.g. "
                     f"{bad[:3]} (a sha256 is 64 lowercase hex digits)", penalty=0.6)
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        report.error("pypi.files", f"file names listed twice: {dups[:3]}", penalty=0.3)


def _check_status(body: dict[str, Any], meta: dict[str, Any], report: QualityReport) -> None:
    info = body["info"]
    if info.get("yanked"):
        report.flag("pypi.yanked", f"release {meta['version']} is yanked: "
                    f"{info.get('yanked_reason') or 'no reason given'}", penalty=0.05)
    vulns = body.get("vulnerabilities") or []
    if vulns:
        ids = [v.get("id") for v in vulns if isinstance(v, dict)]
        report.flag("pypi.vulnerabilities", f"{len(vulns)} known vulnerabilities: {ids[:5]} "
                    "(kept: records what ran)", penalty=0.02)
    installed = meta.get("installed")
    if installed and installed != meta["version"]:
        report.flag("pypi.local_version", f"installed version {installed} is a local build; "
                    f"PyPI's files for {meta['version']} are not the installed ones",
                    penalty=0.02)
