"""boto3 clients, created lazily on first use and cached per settings (so importing the app
costs nothing and tests can point them at an emulator). DynamoDB goes through PynamoDB's one
connection instead (`store/base.py`)."""
from __future__ import annotations

import threading

from chalicelib.config import get_settings

_lock = threading.Lock()
_clients: dict = {}


def client(service: str, pool: int = 32):
    settings = get_settings()
    cached = _clients.get(service)
    if cached is None or cached[0] is not settings:
        with _lock:
            cached = _clients.get(service)
            if cached is None or cached[0] is not settings:
                import boto3
                from botocore.config import Config

                made = boto3.session.Session().client(
                    service, region_name=settings.region, endpoint_url=settings.aws_endpoint_url,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=pool))
                cached = _clients[service] = (settings, made)
    return cached[1]


def s3_client():
    """S3 (exports and import files). Signature v4, so pre-signed URLs work in every region."""
    settings = get_settings()
    cached = _clients.get("s3")
    if cached is None or cached[0] is not settings:
        with _lock:
            cached = _clients.get("s3")
            if cached is None or cached[0] is not settings:
                import boto3
                from botocore.config import Config

                made = boto3.session.Session().client(
                    "s3", region_name=settings.region, endpoint_url=settings.aws_endpoint_url,
                    config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 3},
                                  max_pool_connections=16, s3={"addressing_style": "path"}))
                cached = _clients["s3"] = (settings, made)
    return cached[1]
