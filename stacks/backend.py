"""`python -m stacks bootstrap-backend --bucket NAME --region R`: a secure, self-managed
Pulumi state backend in S3, created idempotently.

The bucket gets versioning, default encryption with its own KMS key (rotation on), all
public access blocked, a TLS-only policy and a lifecycle rule for old versions. An
existing bucket that is public or unencrypted is refused, never "fixed" behind the owner's
back; one this command made before is brought back to the same settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

NONCURRENT_DAYS = 90
TAG = {"Key": "ai-platform:purpose", "Value": "pulumi-state"}


class BackendError(Exception):
    """The bucket cannot be used safely; the message says why and what to do."""


@dataclass
class Backend:
    bucket: str
    region: str
    key_arn: str
    alias: str
    created: bool

    @property
    def login(self) -> str:
        return f"pulumi login 's3://{self.bucket}?region={self.region}&awssdk=v2'"

    @property
    def secrets_provider(self) -> str:
        return f"--secrets-provider 'awskms://{self.alias}?region={self.region}'"


def alias_for(bucket: str) -> str:
    return f"alias/pulumi-state-{bucket}"


def tls_only_policy(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


def _exists(s3, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied", "Forbidden"):
            raise BackendError(f"bucket {bucket!r} exists but belongs to someone else (access denied); "
                               "pick another name") from None
        raise


def _public_reasons(s3, bucket: str) -> list[str]:
    reasons = []
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        if not all(block.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                          "RestrictPublicBuckets")):
            reasons.append("public access is not fully blocked")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
            raise
        reasons.append("it has no public access block")
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    if any(g["Grantee"].get("URI", "").endswith(("/AllUsers", "/AuthenticatedUsers")) for g in grants):
        reasons.append("its ACL grants access to everyone")
    try:
        if s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"]:
            reasons.append("its bucket policy is public")
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("NoSuchBucketPolicy", "NoSuchBucketPolicyStatus"):
            raise
    return reasons


def _existing_key(s3, bucket: str) -> str | None:
    """The KMS key of the bucket's default encryption, or None when it has none of ours."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("KMSMasterKeyID"):
            return default["KMSMasterKeyID"]
    return None


def _key(kms, bucket: str, existing: str | None) -> str:
    alias = alias_for(bucket)
    if existing:
        key_arn = kms.describe_key(KeyId=existing)["KeyMetadata"]["Arn"]
    else:
        try:
            key_arn = kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise
            key_arn = kms.create_key(Description=f"Pulumi state and secrets in s3://{bucket}",
                                     Tags=[{"TagKey": TAG["Key"], "TagValue": TAG["Value"]}])["KeyMetadata"]["Arn"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_arn)
    kms.enable_key_rotation(KeyId=key_arn)
    return key_arn


def bootstrap(bucket: str, region: str, session: boto3.session.Session | None = None) -> Backend:
    session = session or boto3.session.Session(region_name=region)
    s3 = session.client("s3", region_name=region)
    kms = session.client("kms", region_name=region)
    created = not _exists(s3, bucket)
    existing_key = None
    if not created:
        reasons = _public_reasons(s3, bucket)
        if reasons:
            raise BackendError(f"refusing to use existing bucket {bucket!r}: {'; '.join(reasons)}. "
                               "Secure it yourself (or pick a new name); state must never be public.")
        existing_key = _existing_key(s3, bucket)
        if existing_key is None:
            raise BackendError(f"refusing to use existing bucket {bucket!r}: it has no KMS default encryption. "
                               "Pick a new name, or encrypt it with a KMS key first.")
    else:
        args = {"Bucket": bucket}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**args)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [TAG]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    key_arn = _key(kms, bucket, existing_key)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket)))
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "expire-old-state-versions",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }]})
    return Backend(bucket, region, key_arn, alias_for(bucket), created)


def main(bucket: str, region: str) -> int:
    try:
        backend = bootstrap(bucket, region)
    except BackendError as exc:
        print(f"error: {exc}")
        return 1
    except (NoCredentialsError, NoRegionError):
        print("error: no AWS credentials found. Set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), "
              "or run `aws sso login`, then retry. Nothing was changed.")
        return 3
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused: {exc}")
        return 3
    print(f"{'created' if backend.created else 'verified'} s3://{bucket} in {region}: versioned, KMS-encrypted "
          f"({backend.alias}, rotation on), public access blocked, TLS only, old versions expire after "
          f"{NONCURRENT_DAYS} days")
    print("use it with:")
    print(f"  {backend.login}")
    print(f"  pulumi stack init <stack> {backend.secrets_provider}")
    return 0
