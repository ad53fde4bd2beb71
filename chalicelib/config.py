"""One validated settings object, read from the environment on first use.

Resource names come from the environment (set per stage in `.chalice/config.json`
and by `infra/`); when a name is not set explicitly it follows
`loyalty-{stage}-{resource}`.
"""
from __future__ import annotations

import functools
import os
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

LOCAL_JWT_SECRET = "local-dev-secret"


class Settings(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use, not at `import app`

    stage: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9-]+$")] = "local"
    region: str = "us-east-1"
    aws_endpoint_url: Optional[str] = None
    jwt_secret: Optional[str] = None
    jwks_url: Optional[str] = None
    jwt_issuer: Optional[str] = None
    jwt_audience: Optional[str] = None
    settings_cache_seconds: Annotated[float, Field(ge=0)] = 30.0
    max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024
    job_segments: Optional[Annotated[int, Field(ge=1, le=1000)]] = None
    # Who sends the outbox rows a write committed (docs/ARCHITECTURE.md): "inline" right after
    # the commit on the request's thread (tests), "background" a relay thread in this process
    # (`make run`), "stream" the DynamoDB Streams relay function (production: the request path
    # makes no call for it). Default: inline in the local stage, stream elsewhere.
    relay: Optional[Literal["inline", "background", "stream"]] = None
    # How webhook deliveries are sent (docs/WEBHOOKS.md): "background" a delivery thread in this
    # process (`make run`, tests), "queue" one SQS message per delivery on the
    # `webhook-deliveries` queue, consumed by the `webhook-delivery` function (production).
    # Default: background in the local stage, queue elsewhere.
    webhook_delivery: Optional[Literal["background", "queue"]] = None

    @model_validator(mode="after")
    def _check_auth(self) -> "Settings":
        if self.is_local:
            if not self.jwt_secret:
                self.jwt_secret = LOCAL_JWT_SECRET
        else:
            if self.jwt_secret == LOCAL_JWT_SECRET:
                raise ValueError("the local JWT secret is refused outside the local stage")
            if not self.jwks_url and not self.jwt_secret:
                raise ValueError("LOYALTY_JWKS_URL is required outside the local stage")
        return self

    @property
    def relay_mode(self) -> str:
        return self.relay or ("inline" if self.is_local else "stream")

    @property
    def webhook_delivery_mode(self) -> str:
        return self.webhook_delivery or ("background" if self.is_local else "queue")

    @property
    def is_local(self) -> bool:
        return self.stage == "local"

    @property
    def exports_bucket(self) -> str:
        """The S3 bucket of exports and import files (docs/DATA.md): `loyalty-{stage}-exports`."""
        return self.resource_name("exports")

    def resource_name(self, resource: str) -> str:
        """`loyalty-{stage}-{resource}`, overridable per resource by env var."""
        env = "LOYALTY_NAME_" + resource.upper().replace("-", "_")
        return os.environ.get(env) or f"loyalty-{self.stage}-{resource}"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        stage=env.get("LOYALTY_STAGE", "local"),
        region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        jwt_secret=env.get("LOYALTY_JWT_SECRET") or None,
        jwks_url=env.get("LOYALTY_JWKS_URL") or None,
        jwt_issuer=env.get("LOYALTY_JWT_ISSUER") or None,
        jwt_audience=env.get("LOYALTY_JWT_AUDIENCE") or None,
        settings_cache_seconds=float(env.get("LOYALTY_SETTINGS_CACHE_SECONDS", "30")),
        job_segments=int(env["LOYALTY_JOB_SEGMENTS"]) if env.get("LOYALTY_JOB_SEGMENTS") else None,
        relay=env.get("LOYALTY_RELAY") or None,
        webhook_delivery=env.get("LOYALTY_WEBHOOK_DELIVERY") or None,
    )


def reset_settings() -> None:
    """For tests: forget the parsed settings so the environment is read again."""
    get_settings.cache_clear()
