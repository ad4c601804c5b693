"""``Cdn`` on a CloudFront distribution: invalidations of a deleted image's rendition paths.

Needs ``cloudfront:CreateInvalidation`` on the distribution. Each call is one invalidation
batch (CloudFront's first 1,000 paths a month are free; a wildcard path counts as one), with a
fresh caller reference so a retry is a new request rather than a silent duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from imgpipe.adapters.aws._errors import translated

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_cloudfront.type_defs import InvalidationBatchTypeDef

__all__ = ["CloudFrontCdn"]


class CloudFrontCdn:
    def __init__(self, cloudfront_client: CloudFrontClient, distribution_id: str) -> None:
        self._cloudfront = cloudfront_client
        self.distribution_id = distribution_id

    def invalidate(self, paths: Sequence[str]) -> None:
        if not paths:
            return
        batch: InvalidationBatchTypeDef = {
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": uuid.uuid4().hex,
        }
        with translated(f"CloudFront invalidation on {self.distribution_id}"):
            self._cloudfront.create_invalidation(
                DistributionId=self.distribution_id, InvalidationBatch=batch
            )
