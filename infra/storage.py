"""Bytes and parquet at a local path or ``s3://bucket/key``, written atomically.

Local writes go to a temporary file in the same folder and are renamed into place. On S3 a
single PUT is already atomic per object; datasets make themselves atomic by writing their
manifest last (see ``worldgen.dataset``).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError

from infra.errors import UserError
from infra.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd


class StorageError(UserError, RuntimeError):
    """A storage location is missing, unreadable or malformed."""


class NotFound(StorageError):
    """Nothing is stored at the location (as opposed to: it cannot be reached)."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def parse_s3(uri: str) -> S3Location:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri!r} has no bucket; use s3://BUCKET/KEY")
    return S3Location(bucket, key)


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(base, *parts))


@lru_cache(maxsize=8)
def _client(endpoint_url: str | None, region: str, max_attempts: int) -> Any:

    config = Config(retries={"max_attempts": max_attempts, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def s3_client() -> Any:
    s3 = get_settings().s3
    return _client(s3.endpoint_url, s3.region, s3.max_attempts)


def check_writable(uri: str) -> None:
    """Create a local folder ``uri`` if needed, or find its S3 bucket; fail at once, in one
    line, where it cannot be written."""
    if is_s3(uri):
        _check_bucket(uri)
        return
    path = Path(uri)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create {uri}: {exc.strerror}; choose another location"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write to {uri}: permission denied; choose another location")


def check_output_file(path: str) -> None:
    """A local file a command will write when its work is done: find out now that it can."""
    if Path(path).is_dir():
        raise StorageError(f"{path} is a folder; name a file to write")
    check_writable(str(Path(path).resolve().parent))


def _check_bucket(uri: str) -> None:
    """Missing credentials, bucket or permission fail in one line; anything that may pass
    (a 5xx, a lost connection) keeps botocore's type, which the flows retry."""
    try:
        s3_client().head_bucket(Bucket=parse_s3(uri).bucket)
    except NoCredentialsError:
        raise _no_credentials(uri) from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise StorageError(f"{uri}: the bucket does not exist") from None
        if code in ("403", "AccessDenied"):
            raise StorageError(f"{uri}: access to the bucket is denied") from None
        raise


def _no_credentials(uri: str) -> StorageError:
    return StorageError(
        f"{uri}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
    )


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        loc = parse_s3(uri)
        s3_client().put_object(Bucket=loc.bucket, Key=loc.key, Body=data)
        return
    path = Path(uri)
    check_writable(str(path.parent))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        loc = parse_s3(uri)
        client = s3_client()
        try:
            return bytes(client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read())
        except (client.exceptions.NoSuchKey, client.exceptions.NoSuchBucket) as exc:
            raise NotFound(f"{uri} does not exist") from exc
        except NoCredentialsError:
            raise _no_credentials(uri) from None
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"{uri} does not exist") from exc


def exists(uri: str) -> bool:
    if is_s3(uri):
        loc = parse_s3(uri)
        client = s3_client()
        try:
            client.head_object(Bucket=loc.bucket, Key=loc.key)
        except client.exceptions.ClientError:
            return False
        return True
    return Path(uri).exists()


def list_prefix(uri: str) -> list[str]:
    """Every object/file below ``uri``, as full URIs, sorted."""
    if is_s3(uri):
        loc = parse_s3(uri)
        prefix = loc.key.rstrip("/") + "/" if loc.key else ""
        out: list[str] = []
        for page in (
            s3_client().get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix)
        ):
            out += [f"s3://{loc.bucket}/{obj['Key']}" for obj in page.get("Contents", [])]
        return sorted(out)
    root = Path(uri)
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_parquet(uri: str, frame: pd.DataFrame | pa.Table) -> bytes:
    """Write a frame as parquet; returns the bytes written (callers hash them)."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    data = table_to_parquet_bytes(table)
    write_bytes(uri, data)
    return data


def parquet_from_bytes(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def read_parquet(uri: str) -> pa.Table:
    return parquet_from_bytes(read_bytes(uri))


def ensure_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on ``endpoint`` unless it exists (the service stack's S3 server)."""
    client = _client(endpoint, "us-east-1", 8)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
