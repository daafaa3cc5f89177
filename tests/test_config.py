"""The stack config schema: typos, bounds, duplicates and names are rejected before
anything is registered, every problem at once, each naming the file and the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stacks import plan as plan_mod
from stacks.config import ConfigError, parse

from .conftest import FIXTURES, REPO

BAD = FIXTURES / "bad"

MINIMAL = {"environment": "dev", "clusters": [{"name": "primary", "cloud": "aws", "region": "us-west-2"}]}


def problems(raw: dict) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        parse(raw)
    return exc.value.problems


def test_minimal_config_gets_secure_defaults():
    cfg = parse(MINIMAL)
    cluster = cfg.primary
    assert cluster.endpoint.public is False
    assert cluster.kubernetes_version == "1.33"
    assert cfg.network(cluster).zones == 2
    assert cfg.protect(cluster) is False


def test_prod_defaults_to_three_zones_per_zone_nat_and_protection():
    cfg = parse({**MINIMAL, "environment": "prod"})
    net = cfg.network(cfg.primary)
    assert (net.zones, net.nat_gateways) == (3, "per-zone")
    assert cfg.protect(cfg.primary) is True


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("misspelt-key", "Pulumi.misspelt-key.yaml: ai-platform:clusters[0].gpuPool: unknown key; did you mean 'gpuPools'?"),
        ("min-gt-max", "Pulumi.min-gt-max.yaml: ai-platform:clusters[0].gpuPools[0].max: must be >= min (5), got 2"),
        (
            "duplicate-pool",
            "Pulumi.duplicate-pool.yaml: ai-platform:clusters[0].gpuPools[1].name: duplicate GPU pool name 'l4'",
        ),
        ("invalid-tenant-name", "Pulumi.invalid-tenant-name.yaml: ai-platform:tenants[0].name: 'Research_Team' is not a valid DNS label"),
    ],
)
def test_bad_stack_file_is_rejected_with_the_key_and_nothing_registered(fixture, expected):
    result = plan_mod.plan(config_file=BAD / f"Pulumi.{fixture}.yaml")
    assert result.exit_code == 2
    assert len(result.config_errors) == 1, result.config_errors
    assert result.config_errors[0].startswith(expected)
    assert result.run is not None and result.run.resources == []


def test_every_problem_is_reported_in_one_run():
    result = plan_mod.plan(config_file=BAD / "Pulumi.many-problems.yaml")
    assert result.exit_code == 2
    paths = {line.split(": ")[1] for line in result.config_errors}
    assert paths == {
        "ai-platform:enviroment",
        "ai-platform:environment",
        "ai-platform:clusters",  # two primaries
        "ai-platform:clusters[0].kubernetesVersion",
        "ai-platform:clusters[0].gpuPools[0].gpus",  # p4d.24xlarge has 8
        "ai-platform:clusters[0].gpuPools[1].capacity",
        "ai-platform:tenants[0].gpus",
        "ai-platform:tenants[1].name",  # duplicate
    }, result.config_errors


def test_cli_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "stacks", "plan", "--config", str(BAD / "Pulumi.min-gt-max.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "gpuPools[0].max: must be >= min (5)" in proc.stdout


def test_malformed_yaml_names_the_line():
    result = plan_mod.plan(config_file=BAD / "Pulumi.malformed.yaml")
    assert result.exit_code == 2
    assert result.config_errors[0].startswith("Pulumi.malformed.yaml: not valid YAML at line")


def test_missing_stack_file_is_a_config_error(tmp_path):
    result = plan_mod.plan(config_file=tmp_path / "Pulumi.nope.yaml")
    assert result.exit_code == 2 and "no such stack file" in result.config_errors[0]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"cloud": "gcp"}, "clusters[0].project", "required for gcp clusters"),
        ({"cloud": "openstack"}, "clusters[0].cloud", "input should be"),
        ({"region": None}, "clusters[0].region", "required for aws"),
        ({"kubernetesVersion": "1.20"}, "clusters[0].kubernetesVersion", "not supported"),
        ({"role": "burst"}, "clusters", "exactly one cluster must have role primary"),
        ({"endpoint": {"public": True}}, "clusters[0].endpoint.authorizedNetworks", "needs at least one CIDR"),
        ({"endpoint": {"public": True, "authorizedNetworks": ["10.0.0.0/33"]}}, "clusters[0].endpoint.authorizedNetworks", "not a CIDR"),
        ({"network": {"cidr": "10.0.0.0/8"}}, "clusters[0].network.cidr", "between /16 and /20"),
        ({"gpuPools": [{"name": "x", "machineType": "g6.xlarge", "gpus": 0}]}, "clusters[0].gpuPools[0].gpus", "greater than 0"),
        ({"gpuPools": [{"name": "x", "machineType": "g6.xlarge", "gpuModel": "a100"}]}, "clusters[0].gpuPools[0].gpuModel", "carries l4, not a100"),
        ({"gpuPools": [{"name": "x", "machineType": "m9.custom"}]}, "clusters[0].gpuPools[0].machineType", "not a GPU machine type"),
        ({"gpuPools": [{"name": "system", "machineType": "g6.xlarge"}]}, "clusters[0].gpuPools[0].name", "reserved"),
        ({"accessEntries": [{"principalArn": "not-an-arn"}]}, "clusters[0].accessEntries[0].principalArn", "not an IAM role"),
    ],
)
def test_cluster_field_checks(change, path, fragment):
    cluster = {**MINIMAL["clusters"][0], **change}
    found = problems({**MINIMAL, "clusters": [cluster]})
    assert any(p == f"ai-platform:{path}" and fragment in m for p, m in found), found


def test_unknown_gpu_machine_type_is_fine_when_model_and_count_are_given():
    cluster = {**MINIMAL["clusters"][0], "gpuPools": [{"name": "x", "machineType": "p9.big", "gpus": 2, "gpuModel": "x1"}]}
    assert parse({**MINIMAL, "clusters": [cluster]}).primary.gpu_pools[0].gpus == 2


@pytest.mark.parametrize(
    ("tenant", "path", "fragment"),
    [
        ({"name": "kube-system", "gpus": 1}, "tenants[0]", "reserved namespace"),
        ({"name": "a", "gpus": 1, "memory": "lots"}, "tenants[0].memory", "not a Kubernetes quantity"),
        ({"name": "a"}, "tenants[0].gpus", "required key is missing"),
        ({"name": "a", "gpus": 1, "admin": ["x"]}, "tenants[0].admin", "unknown key; did you mean 'adminGroups'?"),
    ],
)
def test_tenant_checks(tenant, path, fragment):
    found = problems({**MINIMAL, "tenants": [tenant]})
    assert any(p == f"ai-platform:{path}" and fragment in m for p, m in found), found


def test_numbers_for_quantities_are_accepted_as_strings():
    cfg = parse({**MINIMAL, "tenants": [{"name": "a", "gpus": 0, "cpu": 8}]})
    assert cfg.tenants[0].cpu == "8"


def test_bursting_needs_a_burst_cluster():
    found = problems({**MINIMAL, "bursting": {"enabled": True}})
    assert ("ai-platform:bursting.enabled", "needs a cluster with role: burst") in found


def test_secure_values_become_secret_placeholders(tmp_path):
    f = tmp_path / "Pulumi.s.yaml"
    f.write_text("config:\n  aws:region: us-west-2\n  ai-platform:token:\n    secure: v1:abc\n  plain: 3\n")
    config, secret_keys = plan_mod.read_stack_file(f)
    assert config == {"aws:region": "us-west-2", "ai-platform:token": "[secret]", "ai-platform:plain": "3"}
    assert secret_keys == ["ai-platform:token"]


# -- what each setting does to the cluster's component (config -> args) ----------------------

def args_of(raw: dict, index: int = 0):
    from stacks.config import cluster_args

    cfg = parse(raw)
    return cluster_args(cfg, cfg.clusters[index], "ai-platform", "dev")


def cluster(**fields) -> dict:
    return {"name": "primary", "cloud": "aws", "region": "us-west-2", **fields}


@pytest.mark.parametrize("environment,setting,protected", [
    ("prod", None, True), ("dev", None, False), ("prod", False, False), ("dev", True, True)])
def test_protection_follows_the_environment_unless_the_cluster_says(environment, setting, protected):
    c = cluster() if setting is None else cluster(protect=setting)
    assert args_of({"environment": environment, "clusters": [c]}).protect is bool(protected)


@pytest.mark.parametrize("cloud,extra", [("aws", {}), ("azure", {"region": "westeurope"})])
def test_log_retention_reaches_the_control_plane_logs(cloud, extra):
    assert args_of({**MINIMAL, "clusters": [cluster(cloud=cloud, logRetentionDays=400, **extra)]}) \
        .log_retention_days == 400
    # Unset: the documented 90 days, on both clouds that keep control-plane logs.
    assert args_of({**MINIMAL, "clusters": [cluster(cloud=cloud, **extra)]}).log_retention_days == 90


def test_aws_log_retention_must_be_a_period_cloudwatch_accepts():
    # CloudWatch Logs takes only its listed periods (PutRetentionPolicy): 2 or 100 days would fail at deploy.
    for days in (2, 100, 3652):
        (problem,) = problems({**MINIMAL, "clusters": [cluster(logRetentionDays=days)]})
        assert problem[0] == "ai-platform:clusters[0].logRetentionDays" and f"not {days}" in problem[1], days
    for days in (1, 3, 731, 3653):
        assert args_of({**MINIMAL, "clusters": [cluster(logRetentionDays=days)]}).log_retention_days == days


def test_the_gpu_operator_toggle_decides_who_installs_drivers():
    on = args_of(MINIMAL)
    off = args_of({**MINIMAL, "addons": {"gpuOperator": {"enabled": False}}})
    assert (on.gpu_driver, off.gpu_driver) == ("gpu-operator", "cloud")


def test_gke_and_aks_defaults_and_overrides():
    gke = {"name": "primary", "cloud": "gcp", "region": "us-central1", "project": "acme-ml"}
    assert args_of({**MINIMAL, "clusters": [gke]}).release_channel == "REGULAR"
    assert args_of({**MINIMAL, "clusters": [{**gke, "releaseChannel": "STABLE"}]}).release_channel == "STABLE"
    assert args_of({**MINIMAL, "clusters": [{**gke}]}).project == "acme-ml"
    aks = {"name": "primary", "cloud": "azure", "region": "westeurope"}
    dev = args_of({**MINIMAL, "clusters": [aks]})
    assert (dev.network_policy, dev.upgrade_channel, dev.sku_tier) == ("cilium", "stable", "Free")
    # prod pays for the SLA-backed control plane.
    assert args_of({"environment": "prod", "clusters": [aks]}).sku_tier == "Standard"
    chosen = args_of({**MINIMAL, "clusters": [{**aks, "networkPolicy": "azure", "upgradeChannel": "patch",
                                               "skuTier": "Premium", "resourceGroup": "rg-1",
                                               "adminGroupObjectIds": ["00000000-0000-0000-0000-000000000001"]}]})
    assert (chosen.network_policy, chosen.upgrade_channel, chosen.sku_tier, chosen.resource_group) == (
        "azure", "patch", "Premium", "rg-1")
    assert chosen.admin_group_object_ids == ("00000000-0000-0000-0000-000000000001",)


def test_every_cluster_is_tagged_with_its_environment_and_its_own_tags():
    args = args_of({"environment": "prod", "clusters": [cluster(tags={"team": "ml"})]})
    assert args.tags == {"ai-platform:environment": "prod", "team": "ml"}


def test_aws_access_entries_reach_the_cluster():
    arn = "arn:aws:iam::123456789012:role/platform-admins"
    args = args_of({**MINIMAL, "clusters": [cluster(accessEntries=[{"principalArn": arn, "clusterAdmin": True}])]})
    assert [(e.principal_arn, e.cluster_admin) for e in args.access_entries] == [(arn, True)]


@pytest.mark.parametrize("environment,bounds", [("prod", (2, 3)), ("dev", (1, 2))])
def test_the_dedicated_manager_is_small_cpu_only_and_highly_available_in_prod(environment, bounds):
    cfg = parse({"environment": environment, "clusters": [cluster()]})
    manager = cfg.manager("m6i.large")
    assert (manager.system_pool.min, manager.system_pool.max) == bounds
    assert manager.system_pool.machine_type == "m6i.large"
    assert manager.gpu_pools == () and manager.cpu_pools == () and manager.role == "primary"
    assert (manager.cloud, manager.region) == ("aws", "us-west-2")
    chosen = parse({"environment": environment, "clusters": [cluster()],
                    "bursting": {"managerPool": {"machineType": "m6i.xlarge", "min": 3, "max": 5}}})
    assert (chosen.manager("m6i.large").system_pool.min, chosen.manager("m6i.large").system_pool.max) == (3, 5)
