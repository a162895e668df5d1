"""An S3 server for tests: moto's server mode on a free loopback port, with one bucket.

The storage talks real HTTP to it (boto3 → moto), path-style, so what is tested is the
``storages.backends.s3.S3Storage`` configuration production uses, only the endpoint differs.
"""

from __future__ import annotations

import secrets

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY = "parley-test"
SECRET_KEY = "parley-test-secret"
REGION = "us-east-1"


class S3Server:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or f"parley-test-{secrets.token_hex(4)}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def storage_setting(self) -> dict:
        """A ``STORAGES["default"]`` entry shaped like the one crm/settings.py builds from S3_*."""
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": self.bucket,
                "endpoint_url": self.endpoint_url,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "addressing_style": "path",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        }

    def keys(self, prefix: str = "") -> list[str]:
        response = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]
