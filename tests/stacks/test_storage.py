"""The bucket: private, TLS-only, encrypted, versioned, with lifecycle rules; kept on destroy unless asked."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from stacks import prefixes, storage


def test_bucket_blocks_public_access_encrypts_and_versions(default_template: Template) -> None:
    default_template.resource_count_is("AWS::S3::Bucket", 1)
    default_template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    )


def test_bucket_policy_denies_requests_without_tls(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ),
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
                            }
                        ),
                    ]
                )
            }
        },
    )


def test_lifecycle_rules_expire_temporary_objects_and_old_versions(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_equals(
                    [
                        {
                            "Id": "AbortIncompleteUploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {
                                "DaysAfterInitiation": storage.INCOMPLETE_UPLOAD_DAYS
                            },
                        },
                        {
                            "Id": "ExpireOldVersions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {
                                "NoncurrentDays": storage.NONCURRENT_VERSION_DAYS
                            },
                            "ExpiredObjectDeleteMarker": True,
                        },
                        {
                            "Id": "ExpireClaims",
                            "Status": "Enabled",
                            "Prefix": prefixes.CLAIMS,
                            "ExpirationInDays": storage.CLAIM_DAYS,
                        },
                    ]
                )
            }
        },
    )


def test_bucket_is_kept_on_destroy_by_default(default_template: Template) -> None:
    default_template.has_resource(
        "AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )
    default_template.resource_count_is("Custom::S3AutoDeleteObjects", 0)


def test_destroy_data_empties_and_deletes_the_bucket(custom_template: Template) -> None:
    custom_template.has_resource(
        "AWS::S3::Bucket", {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    )
    custom_template.resource_count_is("Custom::S3AutoDeleteObjects", 1)
