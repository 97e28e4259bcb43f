"""NetCDF -> store -> the same values; idempotence, appends, versions, layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import xarray as xr
import zarr
from builders import SMALL_GRID

from exocube.catalog import Dataset, DatasetFile, session_scope
from exocube.config import get_settings
from exocube.cubes import ingest, list_versions, open_store
from exocube.cubes.ingest import FileTask, process_file
from exocube.cubes.runs import file_sha256
from exocube.cubes.schema import SCHEMA_VERSION, Layout
from exocube.grid import FIELDS_2D, FIELDS_3D
from exocube.params import ALL_NAMES, OPTIONAL_DEFAULTS


def test_files_round_trip_to_the_same_values(make_runs, store_dir, dask_client) -> None:
    files = make_runs(3)
    result = ingest(files, store_dir, client=dask_client)
    ds = open_store(store_dir)
    assert sorted(result.added) == ["run000", "run001", "run002"]
    assert list(ds["run"].values) == ["run000", "run001", "run002"]
    for path in files:
        src = xr.open_dataset(path)
        run = ds.sel(run=src.attrs["run_id"]).load()
        for name in FIELDS_3D + FIELDS_2D:
            assert run[name].dtype == np.float32
            np.testing.assert_array_equal(run[name].values, src[name].values)
        for name in (*ALL_NAMES, "gravity_m_s2", "tidally_locked"):
            assert run[name].dtype == np.float64
            given = {**OPTIONAL_DEFAULTS, **src.attrs}  # files without pch4_bar: 0
            assert float(run[name]) == pytest.approx(float(given[name]))
    np.testing.assert_allclose(ds["plev"], src["plev"])
    assert ds["plev"].attrs["units"] == "Pa"


def test_store_layout_chunks_codec_and_consolidated_metadata(make_runs, store_dir,
                                                             dask_client) -> None:
    result = ingest(make_runs(2), store_dir, client=dask_client)
    root = json.loads((Path(store_dir) / "versions" / result.version_id / "zarr.json").read_text())
    meta = root["consolidated_metadata"]["metadata"]
    ta = meta["ta"]
    assert ta["shape"] == [2, 2, 8, 8, 16]
    assert ta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 2, 8, 8, 16]
    blosc = next(c for c in ta["codecs"] if c["name"] == "blosc")["configuration"]
    assert (blosc["cname"], blosc["shuffle"]) == ("zstd", "shuffle")
    ds = open_store(store_dir)
    assert ds["ta"].data.chunksize == (1, 2, 8, 8, 16)
    for attr in ("schema_version", "version_id", "horizontal_regrid_method", "time_reduction"):
        assert ds.attrs[attr]
    # each run's group is an ordinary Zarr group with one chunk per variable
    key = json.loads((Path(store_dir) / "versions" / result.version_id /
                      "manifest.json").read_text())["runs"][0]["key"]
    group = zarr.open_group(str(Path(store_dir) / "runs" / key), mode="r")
    assert group["ta"].nchunks == 1


def test_run_groups_use_flat_chunk_keys_and_whole_chunk_blosc_blocks(
        make_runs, store_dir, dask_client) -> None:
    ingest(make_runs(1), store_dir, client=dask_client)
    (group,) = (Path(store_dir) / "runs").iterdir()
    assert (group / "ta" / "c.0.0.0.0.0").is_file()
    assert (group / "ps" / "c.0.0.0.0").is_file()
    assert sorted(p.name for p in (group / "ta").iterdir()) == ["c.0.0.0.0.0", "zarr.json"]
    layout = json.loads((Path(store_dir) / "store.json").read_text())["layout"]
    assert layout["chunk_separator"] == "."
    assert layout["compressor"]["blocksize"] == 1 << 20


def test_store_made_before_flat_chunk_keys_keeps_its_layout(make_runs, store_dir,
                                                            dask_client) -> None:
    """A store whose layout has no chunk separator or blosc block size (made by an
    earlier exocube) keeps nested chunk keys and blosc's default block size."""
    old = Layout.from_grid(SMALL_GRID, 2, None).to_json()
    del old["chunk_separator"], old["compressor"]["blocksize"]
    Path(store_dir).mkdir(parents=True)
    (Path(store_dir) / "store.json").write_text(
        json.dumps({"schema_version": SCHEMA_VERSION, "layout": old}))
    files = make_runs(2)
    ingest(files[:1], store_dir, client=dask_client)
    ingest(files[1:], store_dir, client=dask_client)
    for group in (Path(store_dir) / "runs").iterdir():
        assert (group / "ta" / "c" / "0" / "0" / "0" / "0" / "0").is_file()
    ds = open_store(store_dir)
    for path in files:
        src = xr.open_dataset(path)
        np.testing.assert_array_equal(ds["ta"].sel(run=src.attrs["run_id"]).values,
                                      src["ta"].values)
    stored = json.loads((Path(store_dir) / "store.json").read_text())["layout"]
    assert stored == json.loads(json.dumps(old))


def test_statistics_match_numpy_over_all_runs(make_runs, store_dir, dask_client) -> None:
    ingest(make_runs(2), store_dir, client=dask_client)
    ingest(make_runs(2, start=2), store_dir, client=dask_client)  # combined across versions
    ds = open_store(store_dir).load()
    for name in ("ta", "hus", "zg"):
        values = np.moveaxis(ds[name].values.astype(np.float64), 2, 0).reshape(8, -1)
        counts = np.isfinite(values).sum(axis=1)
        level = counts > 0
        assert not level.all()  # the bottom level is below ground everywhere
        ref = values[level]
        np.testing.assert_allclose(ds[f"{name}_mean"].values[level], np.nanmean(ref, axis=1),
                                   rtol=1e-10)
        np.testing.assert_allclose(ds[f"{name}_std"].values[level], np.nanstd(ref, axis=1),
                                   rtol=1e-8, atol=1e-12)
        np.testing.assert_array_equal(ds[f"{name}_min"].values[level], np.nanmin(ref, axis=1))
        np.testing.assert_array_equal(ds[f"{name}_max"].values[level], np.nanmax(ref, axis=1))
        assert np.isnan(ds[f"{name}_mean"].values[~level]).all()
    assert ds["ps_mean"].shape == ()
    assert float(ds["ps_mean"]) == pytest.approx(float(ds["ps"].astype(float).mean()), rel=1e-12)


def test_second_ingest_changes_nothing_and_new_files_append(make_runs, store_dir,
                                                            dask_client) -> None:
    first = make_runs(2)
    v1 = ingest(first, store_dir, client=dask_client).version_id
    before = sorted(p.relative_to(store_dir) for p in Path(store_dir).rglob("*"))
    again = ingest(first, store_dir, client=dask_client)
    assert again.version_id is None and sorted(again.unchanged) == sorted(first)
    assert sorted(p.relative_to(store_dir) for p in Path(store_dir).rglob("*")) == before
    more = make_runs(2, start=2)
    v2 = ingest(first + more, store_dir, client=dask_client)
    assert sorted(v2.added) == ["run002", "run003"] and len(v2.unchanged) == 2
    assert list_versions(store_dir) == [v1, v2.version_id]
    old, new = open_store(store_dir, v1), open_store(store_dir)
    assert list(old["run"].values) == ["run000", "run001"]
    assert list(new["run"].values) == ["run000", "run001", "run002", "run003"]
    xr.testing.assert_identical(old["ta"].load(), new["ta"].isel(run=slice(0, 2)).load())
    assert float(old["ta_mean"][3]) != float(new["ta_mean"][3])  # stats of its own runs


def test_time_mean_last_reduces_and_is_recorded(make_runs, store_dir, dask_client) -> None:
    files = make_runs(1, ntime=3)
    ingest(files, store_dir, time_mean_last=2, client=dask_client)
    ds = open_store(store_dir)
    src = xr.open_dataset(files[0])
    assert ds.sizes["time"] == 1
    expected = src["ts"].isel(time=slice(1, 3)).mean("time").values
    np.testing.assert_allclose(ds["ts"].isel(run=0, time=0).values, expected, rtol=1e-6)
    assert "last 2 time steps" in ds.attrs["time_reduction"]


def test_versions_and_files_are_in_the_catalogue(make_runs, store_dir, dask_client,
                                                 catalog_url) -> None:
    files = make_runs(2)
    v1 = ingest(files[:1], store_dir, client=dask_client).version_id
    v2 = ingest(files, store_dir, client=dask_client).version_id
    with session_scope(catalog_url) as session:
        rows = {d.version_id: d for d in session.scalars(sa.select(Dataset))}
        assert rows[v2].parent_version == v1 and rows[v1].parent_version is None
        assert rows[v2].n_runs == 2 and rows[v2].code_version
        added = session.scalars(sa.select(DatasetFile).where(
            DatasetFile.dataset_id == rows[v2].id)).all()
        assert [(f.run_id, f.sha256) for f in added] == [("run001", file_sha256(files[1]))]


def test_concurrent_commits_on_one_parent_keep_history_linear(make_runs, store_dir,
                                                              dask_client) -> None:
    import threading

    from exocube.cubes import versions
    from exocube.cubes.store import StoreLocation
    from exocube.errors import StoreError

    files = make_runs(3)
    ingest(files[:1], store_dir, client=dask_client)
    loc = StoreLocation.parse(store_dir)
    layout = Layout.from_json(json.loads((Path(store_dir) / "store.json").read_text())["layout"])
    parent = versions.head_manifest(loc)
    runs = [process_file(f, FileTask(loc, layout, {}, "auto", {}, None)) for f in files[1:]]
    db = get_settings().database_url
    barrier, outcomes = threading.Barrier(2), []

    def commit(run: dict) -> None:
        barrier.wait()
        try:
            outcomes.append(versions.commit(loc, layout, parent, [run], db)["version_id"])
        except StoreError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=commit, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1 and sum(isinstance(o, StoreError) for o in outcomes) == 1
    assert list_versions(store_dir) == [parent["version_id"], winners[0]]
    assert open_store(store_dir).sizes["run"] == 2


def test_latest_follows_a_claim_when_the_pointer_is_stale(make_runs, store_dir,
                                                          dask_client) -> None:
    files = make_runs(2)
    v1 = ingest(files[:1], store_dir, client=dask_client).version_id
    v2 = ingest(files, store_dir, client=dask_client).version_id
    (Path(store_dir) / "latest.json").write_text(json.dumps({"version_id": v1}))  # crash
    assert open_store(store_dir).attrs["version_id"] == v2
    assert list_versions(store_dir) == [v1, v2]


def test_version_missing_from_the_catalogue_after_a_crash_is_recorded(
        make_runs, store_dir, dask_client, catalog_url) -> None:
    files = make_runs(2)
    v1 = ingest(files[:1], store_dir, client=dask_client).version_id
    with session_scope(catalog_url) as session:  # as if killed after claiming v1
        row = session.scalars(sa.select(Dataset).where(Dataset.version_id == v1)).one()
        session.execute(sa.delete(DatasetFile).where(DatasetFile.dataset_id == row.id))
        session.delete(row)
    v2 = ingest(files, store_dir, client=dask_client).version_id
    with session_scope(catalog_url) as session:
        rows = {d.version_id: d.parent_version for d in session.scalars(sa.select(Dataset))}
        files_v1 = session.scalars(sa.select(DatasetFile.run_id).join(Dataset).where(
            Dataset.version_id == v1)).all()
    assert rows == {v1: None, v2: v1} and files_v1 == ["run000"]
