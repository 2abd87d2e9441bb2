"""pipeline.storage against a local S3 server (moto's server mode on 127.0.0.1, started here) and the local disk:
the same bytes either way, writes all or nothing, a task's files visible only through its manifest, and one
clear line for each location that cannot be used."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from moto import server as moto_server

from pipeline import storage


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A fresh bucket on the local server, as GAIASIM_S3_ENDPOINT and dummy credentials name it."""
    monkeypatch.setenv(storage.ENDPOINT_ENV, s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"b{np.random.default_rng().integers(1 << 40):x}"
    host = s3_endpoint.split("://", 1)[1]
    pafs.S3FileSystem(region="us-east-1", endpoint_override=host, scheme="http",
                      allow_bucket_creation=True).create_dir(bucket)
    return bucket


def _table() -> pa.Table:
    return pa.table({"transit_id": np.arange(1000, dtype=np.int64), "g_mag": np.linspace(5, 21, 1000)})


def test_object_storage_and_the_local_disk_hold_the_same_bytes(s3, tmp_path):
    remote, local = storage.locate(f"s3://{s3}/day/run"), storage.locate(tmp_path / "run")
    assert not remote.is_local and remote.uri == f"s3://{s3}/day/run" and local.is_local
    for loc in (remote, local):
        loc.put_parquet(_table(), "transits/part-0.parquet")
        loc.put("run.json", b'{"status": "complete"}')
    assert remote.get("transits/part-0.parquet") == local.get("transits/part-0.parquet")
    assert remote.read_parquet("transits/part-0.parquet").equals(_table())
    assert remote.exists("run.json") and not remote.exists("nothing.json")
    with pytest.raises(FileNotFoundError):
        remote.get("nothing.json")


def test_a_task_s_files_count_only_once_its_manifest_is_written(s3):
    """A task killed between its parts and its manifest leaves parts nobody reads; the resumed task overwrites
    them and commits; the listing is never trusted, the manifests are."""
    loc = storage.locate(f"s3://{s3}/ds")
    loc.put_parquet(_table(), "truth/hour=1/part-a.parquet")
    assert loc.committed() == [] and loc.manifests() == []  # killed here: nothing visible
    loc.put_parquet(_table().slice(0, 10), "truth/hour=1/part-a.parquet")  # the resumed task writes again
    loc.put_parquet(_table().slice(10, 5), "truth/hour=1/part-b.parquet")
    manifest = loc.commit("hour-1", ["truth/hour=1/part-a.parquet", "truth/hour=1/part-b.parquet"])
    assert manifest["files"][0]["octets"] == len(loc.get("truth/hour=1/part-a.parquet"))
    assert manifest["files"][1]["sha256"] == hashlib.sha256(loc.get("truth/hour=1/part-b.parquet")).hexdigest()
    loc.put_parquet(_table(), "truth/hour=2/part-a.parquet")  # a second task, not committed yet
    assert loc.committed() == ["truth/hour=1/part-a.parquet", "truth/hour=1/part-b.parquet"]
    loc.commit("hour-2", ["truth/hour=2/part-a.parquet"])
    assert [m["task"] for m in loc.manifests()] == ["hour-1", "hour-2"] and len(loc.committed()) == 3
    with pytest.raises(ValueError, match="no '/'"):
        loc.commit("a/b", [])


def test_a_local_write_leaves_no_temporary_and_replaces_whole(tmp_path):
    loc = storage.locate(f"file://{tmp_path}")
    loc.put("a/b.bin", b"one")
    loc.put("a/b.bin", b"two")
    assert loc.get("a/b.bin") == b"two" and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.bin"]
    assert storage.locate(tmp_path).root == tmp_path.resolve().as_posix()


@pytest.mark.parametrize(("where", "endpoint", "message"), [
    ("gs://bucket/x", None, r"^gs://bucket/x: unsupported location scheme 'gs'; use a local path or s3://"),
    ("s3:///x", None, r"^s3:///x: no bucket; write s3://bucket/prefix$"),
    ("s3://b/x", "ftp://127.0.0.1:9", r"^S3 endpoint 'ftp://127.0.0.1:9' is not http\(s\)://host\[:port\]"),
])
def test_a_location_that_cannot_be_used_says_why_in_one_line(where, endpoint, message):
    with pytest.raises(storage.StorageError, match=message) as e:
        storage.locate(where, endpoint)
    assert "\n" not in str(e.value)


def test_a_missing_bucket_and_an_unreachable_endpoint_say_so(s3, monkeypatch):
    with pytest.raises(storage.StorageError, match=r"bucket 'no-such-bucket' does not exist at 127\.0\.0\.1:\d+; "
                                                   r"create it first$"):
        storage.locate("s3://no-such-bucket/day")
    monkeypatch.setattr(storage, "TIMEOUT_S", 1.0)
    with pytest.raises(storage.StorageError, match=r"cannot reach the S3 endpoint 127\.0\.0\.1:1: .*"
                                                   r"set GAIASIM_S3_ENDPOINT to a reachable endpoint$") as e:
        storage.locate(f"s3://{s3}/day", "http://127.0.0.1:1")
    assert "\n" not in str(e.value)
