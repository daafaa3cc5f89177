"""Operations tooling against AWS APIs, with moto (and botocore's Stubber for Service
Quotas, which moto does not serve). Nothing here reaches a network."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from stacks import backend, preflight


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-west-2"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


class QuotaSession:
    """A boto3 session whose EC2 is moto's and whose Service Quotas is a Stubber that
    expects exactly the quota codes in `quotas`, in that order (so the tests also pin
    which quota each pool is checked against)."""

    def __init__(self, region: str, quotas: dict[str, float]):
        self.region, self.quotas = region, quotas

    def client(self, name: str, region_name: str):
        client = boto3.client(name, region_name=region_name)
        if name == "service-quotas":
            stubber = Stubber(client)
            for code, value in self.quotas.items():
                stubber.add_response("get_service_quota", {"Quota": {"QuotaCode": code, "Value": value}},
                                     {"ServiceCode": "ec2", "QuotaCode": code})
            stubber.activate()
        return client


def stack(tmp_path, region: str, pools: list[dict], cloud: str = "aws") -> object:
    cluster = {"name": "primary", "cloud": cloud, "region": region, "gpuPools": pools}
    path = tmp_path / "Pulumi.ops.yaml"
    path.write_text(yaml.safe_dump({"config": {"ai-platform:environment": "dev",
                                               "ai-platform:clusters": [cluster]}}))
    return path


def check(tmp_path, region, pools, quotas):
    return preflight.run(None, stack(tmp_path, region, pools), lambda r: QuotaSession(r, quotas))


def test_capacity_and_quota_that_fit_pass(tmp_path):
    report = check(tmp_path, "us-west-2", [{"name": "l4", "machineType": "g6.xlarge", "capacity": "spot", "max": 4}],
                   {"L-3819A6DF": 64})
    assert report.findings == [] and report.checked == ["primary (aws, us-west-2): l4"]


def test_instance_type_not_offered_in_the_clusters_zones(tmp_path):
    # In eu-west-1 p4d.24xlarge is offered in zone c only; a 2-zone cluster uses a and b.
    report = check(tmp_path, "eu-west-1", [{"name": "a100", "machineType": "p4d.24xlarge", "max": 1}],
                   {"L-417A185B": 1000})
    (finding,) = report.blocking
    assert finding.pool == "a100"
    assert finding.message == "p4d.24xlarge is not offered in the cluster's zones eu-west-1a, eu-west-1b"
    assert "eu-west-1c" in finding.fix


def test_instance_type_missing_in_some_zones_is_a_warning(tmp_path):
    report = check(tmp_path, "ap-southeast-2", [{"name": "a100", "machineType": "p4d.24xlarge", "max": 1}],
                   {"L-417A185B": 1000})
    assert report.blocking == []
    assert [f.message for f in report.findings] == [
        "p4d.24xlarge is offered in ap-southeast-2b only, not in ap-southeast-2a: nodes launch there only"]


def test_gpu_count_mismatch(tmp_path):
    # g5g is outside the catalog, so only EC2 can tell the config is wrong.
    report = check(tmp_path, "us-west-2",
                   [{"name": "arm", "machineType": "g5g.xlarge", "gpus": 2, "gpuModel": "t4g", "max": 1}],
                   {"L-DB2E81BA": 64})
    (finding,) = report.blocking
    assert finding.message == "g5g.xlarge has 1 GPU(s), the config says 2"
    assert finding.fix.startswith("set gpus: 1")


def test_insufficient_quota_names_the_code_and_the_numbers(tmp_path):
    report = check(tmp_path, "us-west-2", [{"name": "a100", "machineType": "p4d.24xlarge", "max": 4},
                                           {"name": "h100", "machineType": "p5.48xlarge", "max": 1}],
                   {"L-417A185B": 96})
    (finding,) = report.blocking
    assert finding.message == ("Running On-Demand P instances quota is 96 vCPUs; max nodes of a100, h100 need 576")
    assert "--quota-code L-417A185B --desired-value 576" in finding.fix


def test_other_clouds_are_reported_as_not_checked(tmp_path, capsys):
    path = tmp_path / "Pulumi.gke.yaml"
    path.write_text(yaml.safe_dump({"config": {"ai-platform:environment": "dev", "ai-platform:clusters": [
        {"name": "primary", "cloud": "gcp", "project": "acme-ml", "region": "us-central1"}]}}))
    assert preflight.main(None, str(path)) == 0
    assert "skipped primary (gcp): not checked" in capsys.readouterr().out


def test_missing_credentials_get_a_clear_message(tmp_path, monkeypatch, capsys):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = stack(tmp_path, "us-west-2", [{"name": "l4", "machineType": "g6.xlarge"}])
    assert preflight.main(None, str(path)) == 3
    out = capsys.readouterr().out
    assert "no AWS credentials found" in out and "Traceback" not in out


def test_invalid_stack_file_is_exit_2(tmp_path, capsys):
    path = stack(tmp_path, "us-west-2", [{"name": "l4", "machineType": "g6.xlarge", "min": 3, "max": 1}])
    assert preflight.main(None, str(path)) == 2
    assert "gpuPools[0].max: must be >= min (3)" in capsys.readouterr().out


# -- state backend --------------------------------------------------------------------------


def settings(bucket: str, region: str = "eu-west-1") -> dict:
    s3 = boto3.client("s3", region_name=region)
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    return {
        "versioning": s3.get_bucket_versioning(Bucket=bucket)["Status"],
        "encryption": enc["ApplyServerSideEncryptionByDefault"],
        "block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "policy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
    }


def test_bootstrap_creates_a_locked_down_versioned_encrypted_bucket():
    result = backend.bootstrap("acme-pulumi-state", "eu-west-1")
    assert result.created
    got = settings("acme-pulumi-state")
    assert got["versioning"] == "Enabled"
    assert got["encryption"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": result.key_arn}
    assert all(got["block"].values()) and len(got["block"]) == 4
    (statement,) = got["policy"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (rule,) = got["lifecycle"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90 and rule["Status"] == "Enabled"
    kms = boto3.client("kms", region_name="eu-west-1")
    assert kms.get_key_rotation_status(KeyId=result.key_arn)["KeyRotationEnabled"] is True
    assert result.login == "pulumi login 's3://acme-pulumi-state?region=eu-west-1&awssdk=v2'"
    assert result.secrets_provider == "--secrets-provider 'awskms://alias/pulumi-state-acme-pulumi-state?region=eu-west-1'"


def test_bootstrap_twice_changes_nothing_and_reuses_the_key():
    first = backend.bootstrap("acme-pulumi-state", "eu-west-1")
    second = backend.bootstrap("acme-pulumi-state", "eu-west-1")
    assert (first.created, second.created) == (True, False)
    assert second.key_arn == first.key_arn
    assert len(boto3.client("kms", region_name="eu-west-1").list_keys()["Keys"]) == 1
    assert settings("acme-pulumi-state")["encryption"]["KMSMasterKeyID"] == first.key_arn


def test_existing_public_bucket_is_refused_and_left_alone():
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="leaky", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_public_access_block(Bucket="leaky", PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.put_bucket_acl(Bucket="leaky", ACL="public-read")
    with pytest.raises(backend.BackendError, match="refusing to use existing bucket 'leaky'.*public access is not "
                                                   "fully blocked.*ACL grants access to everyone"):
        backend.bootstrap("leaky", "eu-west-1")
    assert s3.get_bucket_versioning(Bucket="leaky").get("Status") is None  # untouched


def test_existing_unencrypted_bucket_is_refused():
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="plain", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_public_access_block(Bucket="plain", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    with pytest.raises(backend.BackendError, match="no KMS default encryption"):
        backend.bootstrap("plain", "eu-west-1")


def test_cli_prints_the_login_and_secrets_provider(capsys):
    assert backend.main("acme-state", "us-east-1") == 0
    out = capsys.readouterr().out
    assert "pulumi login 's3://acme-state?region=us-east-1&awssdk=v2'" in out
    assert "--secrets-provider 'awskms://alias/pulumi-state-acme-state?region=us-east-1'" in out
    assert backend.main("acme-state", "us-east-1") == 0 and "verified s3://acme-state" in capsys.readouterr().out
