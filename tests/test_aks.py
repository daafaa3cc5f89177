"""AksCluster under mocks: Entra ID + Azure RBAC, no local accounts, workload identity,
network policy, private API server, audit logs, and tainted autoscaled pools."""

from __future__ import annotations

import json

import pytest

from components.clusters.aks import AksCluster, AksClusterArgs
from components.clusters.base import EndpointSpec, GpuPoolSpec, GpuSharing, NetworkSpec
from stacks.engine import is_secret

from .conftest import inputs, run_component

POOL = "azure-native:containerservice:AgentPool"


def build(**overrides):
    args = {
        "cluster_name": "acme-aks",
        "region": "westeurope",
        "network": NetworkSpec(zones=3),
        "gpu_pools": (
            GpuPoolSpec(name="a100", machine_type="Standard_NC24ads_A100_v4", min=0, max=4,
                        sharing=GpuSharing(mode="mig", profile="all-2g.20gb")),
            GpuPoolSpec(name="t4", machine_type="Standard_NC8as_T4_v3", capacity="spot", min=0, max=10),
        ),
        **overrides,
    }
    return run_component(lambda: AksCluster("primary", AksClusterArgs(**args)))


@pytest.fixture(scope="module")
def default():
    return build()


def cluster(run):
    return inputs(run.one("azure-native:containerservice:ManagedCluster", "primary-aks"))


def pools(run):
    """The GPU agent pools (the default `general` CPU pool is tested on its own)."""
    return {r.name: inputs(r) for r in run.by_type(POOL) if "ai-platform.io/gpu-model" in inputs(r)["nodeLabels"]}


def test_entra_id_with_azure_rbac_and_no_local_accounts(default):
    c = cluster(default)
    assert c["aadProfile"]["managed"] is True and c["aadProfile"]["enableAzureRBAC"] is True
    assert c["disableLocalAccounts"] is True


def test_oidc_issuer_and_workload_identity(default):
    c = cluster(default)
    assert c["oidcIssuerProfile"] == {"enabled": True}
    assert c["securityProfile"]["workloadIdentity"] == {"enabled": True}


def test_network_policy_and_private_api_server(default):
    c = cluster(default)
    assert c["networkProfile"]["networkPolicy"] == "cilium"
    assert c["apiServerAccessProfile"] == {"enablePrivateCluster": True}
    assert c["autoUpgradeProfile"]["upgradeChannel"] == "stable"


def test_public_api_server_only_for_authorized_ranges():
    run = build(endpoint=EndpointSpec(public=True, authorized_networks=("203.0.113.0/24",)), gpu_pools=())
    api = cluster(run)["apiServerAccessProfile"]
    assert api == {"enablePrivateCluster": False, "authorizedIPRanges": ["203.0.113.0/24"]}


def test_system_pool_is_tainted_and_zonal(default):
    (system,) = cluster(default)["agentPoolProfiles"]
    assert system["mode"] == "System"
    assert system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    assert system["availabilityZones"] == ["1", "2", "3"]
    assert system["enableAutoScaling"] is True


def test_gpu_pools_tainted_autoscaled_and_spot(default):
    a100, t4 = pools(default)["primary-a100"], pools(default)["primary-t4"]
    assert a100["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert t4["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule", "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
    assert (t4["minCount"], t4["maxCount"], t4["enableAutoScaling"]) == (0, 10, True)
    assert (t4["scaleSetPriority"], t4["scaleSetEvictionPolicy"], t4["spotMaxPrice"]) == ("Spot", "Delete", -1)
    assert a100["scaleSetPriority"] == "Regular" and "scaleSetEvictionPolicy" not in a100
    assert a100["gpuInstanceProfile"] == "MIG2g"
    assert a100["mode"] == "User" and a100["nodeLabels"]["ai-platform.io/gpu-model"] == "a100-80gb"


def test_gpu_driver_left_to_the_operator_only_when_it_runs(default):
    assert all(p["gpuProfile"] == {"driver": "Install"} for p in pools(default).values())
    run = build(gpu_driver="gpu-operator")
    assert all(p["gpuProfile"] == {"driver": "None"} for p in pools(run).values())


def test_counts_belong_to_the_autoscaler(default):
    # The default channel (stable) upgrades minors: AKS owns the version too.
    assert default.one("azure-native:containerservice:ManagedCluster", "primary-aks").ignore_changes == [
        "agentPoolProfiles[0].count", "kubernetesVersion"]
    for r in default.by_type(POOL):
        assert r.ignore_changes == ["count"]
    profile = cluster(default)["autoScalerProfile"]
    assert profile["expander"] == "least-waste" and profile["balanceSimilarNodeGroups"] == "true"


def test_audit_logs_go_to_log_analytics(default):
    diag = default.one("azure-native:monitor:DiagnosticSetting", "primary-audit")
    p = inputs(diag)
    assert [(log["category"], log["enabled"]) for log in p["logs"]] == [("kube-audit-admin", True), ("guard", True)]
    workspace = default.one("azure-native:operationalinsights:Workspace", "primary-logs")
    assert p["workspaceId"] == workspace.outputs["id"]
    assert p["resourceUri"] == default.one("azure-native:containerservice:ManagedCluster", "primary-aks").outputs["id"]


def test_kubeconfig_comes_from_the_user_credentials_and_is_secret(default):
    provider = default.one("pulumi:providers:kubernetes", "primary-k8s")
    assert is_secret(provider.inputs["kubeconfig"])
    config = json.loads(inputs(provider)["kubeconfig"])
    assert config["clusters"][0]["cluster"]["server"].endswith(".privatelink.westeurope.azmk8s.io:443")
    assert config["users"][0]["user"]["exec"]["command"] == "kubelogin"
    assert "azurecli" in config["users"][0]["user"]["exec"]["args"]


def test_deployer_gets_aks_rbac_cluster_admin(default):
    role = inputs(default.one("azure-native:authorization:RoleAssignment", "primary-deployer-admin"))
    assert role["roleDefinitionId"].endswith("/roleDefinitions/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b")
    provider = default.one("pulumi:providers:kubernetes", "primary-k8s")
    assert default.one("azure-native:authorization:RoleAssignment", "primary-deployer-admin").urn in provider.dependencies


def test_agent_pool_names_must_fit_aks():
    with pytest.raises(ValueError, match="1-12 lower-case letters and digits"):
        AksClusterArgs(cluster_name="acme-aks", region="westeurope",
                       gpu_pools=(GpuPoolSpec(name="a100-pool", machine_type="Standard_NC24ads_A100_v4"),))
