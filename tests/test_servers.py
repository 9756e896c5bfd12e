"""The test servers themselves: real processes, real HTTP, real round trips."""

from __future__ import annotations

import subprocess

import botocore.exceptions
import pyarrow as pa
import pytest
from pyiceberg.catalog import load_catalog

from tests.servers import MotoServer, _boto3_client, duckdb_attach_sql, duckdb_connect, duckdb_s3_secret_sql

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})


def _alive(pid: int) -> bool:
    return subprocess.run(["ps", "-p", str(pid), "-o", "stat="], capture_output=True, text=True).stdout.strip() \
        not in ("", "Z")


@pytest.mark.s3
def test_moto_boto3_round_trip(s3_bucket):
    server, bucket = s3_bucket
    client = server.client()
    client.put_object(Bucket=bucket, Key="dir/obj.bin", Body=b"\x00payload")
    assert client.get_object(Bucket=bucket, Key="dir/obj.bin")["Body"].read() == b"\x00payload"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/obj.bin"]
    assert server.endpoint.startswith("http://127.0.0.1:")


@pytest.mark.s3
def test_duckdb_iceberg_scan_on_moto(s3_bucket, tmp_path):
    server, bucket = s3_bucket
    cat = load_catalog("m", type="sql", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"s3://{bucket}/wh",
                       **server.props(bucket, "wh"))
    cat.create_namespace("ns")
    tbl = cat.create_table("ns.t", schema=ROWS.schema)
    tbl.append(ROWS)
    assert tbl.metadata_location.startswith(f"s3://{bucket}/wh/")
    con = duckdb_connect()
    con.execute(duckdb_s3_secret_sql(server.props()))
    got = con.sql(f"SELECT id, name FROM iceberg_scan('{tbl.metadata_location}') ORDER BY id").fetchall()
    assert got == [(1, "a"), (2, "b"), (3, "c")]


@pytest.mark.seaweedfs
def test_seaweed_rest_catalog_round_trip(seaweed_table_bucket):
    server, table_bucket = seaweed_table_bucket
    cat = load_catalog("sw", **server.catalog_props(table_bucket))
    cat.create_namespace("ns")
    tbl = cat.create_table("ns.t", schema=ROWS.schema)
    tbl.append(ROWS)
    assert tbl.metadata_location.startswith(f"s3://{table_bucket}/ns/")
    assert cat.load_table("ns.t").scan().to_arrow().sort_by("id").to_pydict() == ROWS.to_pydict()
    # the same data through DuckDB: the REST catalog attached, and iceberg_scan on the file
    con = duckdb_connect()
    for sql in duckdb_attach_sql(server, table_bucket, alias="sw"):
        con.execute(sql)
    assert con.sql("SELECT id, name FROM sw.ns.t ORDER BY id").fetchall() == [(1, "a"), (2, "b"), (3, "c")]
    con.execute("INSERT INTO sw.ns.t VALUES (4, 'd')")
    assert cat.load_table("ns.t").scan().to_arrow().num_rows == 4
    assert con.sql(f"SELECT count(*) FROM iceberg_scan('{tbl.metadata_location}')").fetchone() == (3,)


@pytest.mark.seaweedfs
def test_seaweed_plain_s3_and_credentials(seaweed_server):
    bucket = seaweed_server.create_bucket("plain-objects")
    client = seaweed_server.client()
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
        _boto3_client("s3", seaweed_server.s3_endpoint, "nope", "nope").list_objects_v2(Bucket=bucket)


def test_stop_kills_the_process():
    server = MotoServer()
    pid = server.pid
    assert _alive(pid)
    server.stop()
    server.stop()  # idempotent
    assert not _alive(pid)
