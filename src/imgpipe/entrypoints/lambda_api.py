"""The HTTP API function: API Gateway HTTP API (payload v2) events through the one ASGI app, by
Mangum (the adapter made for it).

The app (boto3 clients, adapters, service, ASGI app) is built on the first invocation and kept
for the life of the container - never at import, so importing this module talks to nothing.
Configuration comes from the environment (``imgpipe.bootstrap.build_aws``).

Logs are JSON lines with the request id as correlation id. The event is never logged: it carries
image bytes and authorization headers, and responses carry presigned URLs.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from imgpipe.api.identity import oidc_from_env
from imgpipe.api.routes import build_api
from imgpipe.bootstrap import build_aws

__all__ = ["adapter", "handler"]

# Named after our package's root logger, so every ``imgpipe.*`` record gets the same JSON
# formatter, Lambda context and correlation id.
logger = Logger(service="imgpipe")


@functools.cache
def adapter() -> Mangum:
    """The app bound to the AWS-wired service, behind Mangum; built once per container. With
    the template's sign-in variables set (AuthMode COGNITO), the dashboard signs in there; API
    Gateway has checked every token before the function runs."""
    oidc, aws = oidc_from_env(), build_aws()
    app = build_api(aws.service, auth="oidc" if oidc else "none", oidc=oidc, cdn_url=aws.cdn_url)
    return Mangum(app, lifespan="off")


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``imgpipe.entrypoints.lambda_api.handler``)."""
    # Two typings of the same runtime object (Powertools' and Mangum's LambdaContext).
    response: dict[str, Any] = adapter()(event, context)  # type: ignore[arg-type]
    return response
