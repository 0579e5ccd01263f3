"""The bucket for inputs, manifests, compiled models, claims and results."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import prefixes
from stacks.nag import acknowledge

NONCURRENT_VERSION_DAYS = 30
"""Overwritten or deleted objects stay recoverable this long, then their old versions expire."""
CLAIM_DAYS = 30
"""Claim markers only guard against duplicate S3 events (delivered within hours) and carry the plan
that the ensemble's array children read while they run; a month covers both with room to spare."""
INCOMPLETE_UPLOAD_DAYS = 1


class Storage(Construct):
    """One private, encrypted, versioned bucket; the stack grants each role its own prefixes.

    ``destroy_data=False`` (the default) keeps the bucket and everything in it when the stack is
    destroyed; ``True`` empties it (every version) and deletes it with the stack.
    """

    def __init__(self, scope: Construct, construct_id: str, *, destroy_data: bool) -> None:
        super().__init__(scope, construct_id)
        self.destroy_data = destroy_data
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # SSE-S3: no per-key monthly charge and no KMS calls per object (a KMS key would cost while idle).
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
                ),
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(
                    id="ExpireClaims",
                    prefix=prefixes.CLAIMS,
                    expiration=Duration.days(CLAIM_DAYS),
                ),
            ],
            removal_policy=RemovalPolicy.DESTROY if destroy_data else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy_data,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Server access logs would add a log object per request (thousands per ensemble) and a second "
            "bucket to manage; nothing consumes them. CloudTrail S3 data events can be enabled if an audit "
            "trail is ever required.",
            checkov=["CKV_AWS_18"],
        )
