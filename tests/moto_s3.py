"""A local S3-compatible server (moto's server mode) for the tests of the ``s3`` artifact
store: real HTTP, real boto3, no AWS. Import the fixture into a test module to use it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from support import free_port

#: moto accepts any credentials; boto3 needs some
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "harmonia-test",
    "AWS_SECRET_ACCESS_KEY": "harmonia-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on a free loopback port, for the whole session."""
    pytest.importorskip("boto3")
    server_mode = pytest.importorskip("moto.server")
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    port = free_port()
    server = server_mode.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the moto server: ``s3://<bucket>``."""
    import boto3

    name = f"harmonia-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"
