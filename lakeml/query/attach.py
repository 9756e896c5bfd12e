"""How DuckDB reaches the lake: schema names, the S3 secret, the REST catalog ATTACH, ``iceberg_scan``."""

from __future__ import annotations

from urllib.parse import urlparse

from lakeml.query.cache import ident, q
from lakeml.storage.objectstore import S3Settings, uses_s3

SCHEMA = "lakeml"  # the DuckDB schema of the lakeml views, whatever the Iceberg namespace
INTERNAL = "__lakeml"
REST_ALIAS = "lakeml_catalog"  # the attached REST catalog


def s3_secret_sql(props: dict[str, str], name: str = "lakeml_s3") -> str | None:
    """``CREATE SECRET`` for DuckDB from pyiceberg's s3.* keys (None when there are none)."""
    if not uses_s3(props):
        return None
    s = S3Settings.from_properties(props)
    parts = ["TYPE s3", f"REGION {q(s.region)}"]
    if s.access_key:
        parts += [f"KEY_ID {q(s.access_key)}", f"SECRET {q(s.secret_key)}"]
        if s.session_token:
            parts.append(f"SESSION_TOKEN {q(s.session_token)}")
    if s.endpoint:
        parts += [f"ENDPOINT {q(s.endpoint)}", f"USE_SSL {'true' if s.use_ssl else 'false'}"]
    parts.append(f"URL_STYLE {q('vhost' if s.virtual_addressing else 'path')}")
    return f"CREATE OR REPLACE SECRET {name} ({', '.join(parts)})"


def rest_attach_sql(props: dict[str, str], alias: str = REST_ALIAS) -> str:
    """``ATTACH`` of a pyiceberg REST catalog profile in DuckDB, read-only."""
    warehouse = props.get("prefix") or props.get("warehouse", "")
    opts = ["TYPE iceberg", f"ENDPOINT {q(props['uri'].rstrip('/'))}", "READ_ONLY"]
    if cred := props.get("credential"):
        cid, _, secret = cred.partition(":")
        opts += [f"CLIENT_ID {q(cid)}", f"CLIENT_SECRET {q(secret)}"]
        if oauth := props.get("oauth2-server-uri"):
            opts.append(f"OAUTH2_SERVER_URI {q(oauth)}")
    elif tok := props.get("token"):
        opts.append(f"TOKEN {q(tok)}")
    else:
        opts.append("AUTHORIZATION_TYPE 'none'")
    return f"ATTACH {q(warehouse)} AS {ident(alias)} ({', '.join(opts)})"


def iceberg_sql(location: str, snapshot_id: int | None = None) -> str:
    snap = f", snapshot_from_id = {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"SELECT * FROM iceberg_scan({q(location)}{snap})"


def _root(location: str) -> str:
    """The folder DuckDB may read for a table or warehouse location (a bucket for object stores)."""
    u = urlparse(location)
    if u.scheme in ("", "file"):
        path = u.path if u.scheme else location
        return path.rstrip("/") + "/"
    return f"{u.scheme}://{u.netloc}/"
