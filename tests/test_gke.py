"""GkeCluster under mocks: CIS-relevant settings, GPU pools, and autoscaler-owned counts."""

from __future__ import annotations

import json

import pytest

from components.clusters.base import EndpointSpec, GpuPoolSpec, GpuSharing
from components.clusters.gke import GkeCluster, GkeClusterArgs, subnet_ranges
from stacks.engine import is_secret

from .conftest import inputs, run_component

POOL = "gcp:container/nodePool:NodePool"


def build(**overrides):
    args = {
        "cluster_name": "acme-gke",
        "project": "acme-ml",
        "region": "us-central1",
        "gpu_pools": (
            GpuPoolSpec(name="a100", machine_type="a2-highgpu-1g", min=0, max=3,
                        sharing=GpuSharing(mode="mig", profile="all-1g.5gb")),
            GpuPoolSpec(name="l4", machine_type="g2-standard-8", capacity="spot", min=0, max=12,
                        sharing=GpuSharing(mode="time-slicing", replicas=4)),
        ),
        **overrides,
    }
    return run_component(lambda: GkeCluster("primary", GkeClusterArgs(**args)))


@pytest.fixture(scope="module")
def default():
    return build()


def cluster(run):
    return inputs(run.one("gcp:container/cluster:Cluster", "primary-gke"))


def pools(run):
    return {r.name: r for r in run.by_type(POOL)}


def test_private_nodes_and_private_endpoint_by_default(default):
    c = cluster(default)
    assert c["privateClusterConfig"] == {"enablePrivateNodes": True, "enablePrivateEndpoint": True}
    assert c["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False
    assert c["masterAuthorizedNetworksConfig"].get("cidrBlocks", []) == []


def test_public_endpoint_only_for_authorized_networks():
    run = build(endpoint=EndpointSpec(public=True, authorized_networks=("198.51.100.0/24",)), gpu_pools=())
    c = cluster(run)
    assert c["privateClusterConfig"]["enablePrivateEndpoint"] is False
    assert c["privateClusterConfig"]["enablePrivateNodes"] is True
    assert [b["cidrBlock"] for b in c["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == ["198.51.100.0/24"]


def test_cis_cluster_settings(default):
    c = cluster(default)
    assert c["workloadIdentityConfig"] == {"workloadPool": "acme-ml.svc.id.goog"}
    assert c["enableShieldedNodes"] is True
    assert c["datapathProvider"] == "ADVANCED_DATAPATH"
    assert c["releaseChannel"] == {"channel": "REGULAR"}
    assert c["enableLegacyAbac"] is False
    assert c["masterAuth"]["clientCertificateConfig"] == {"issueClientCertificate": False}
    assert c["networkingMode"] == "VPC_NATIVE" and c["removeDefaultNodePool"] is True


def test_secrets_are_encrypted_with_a_rotating_kms_key_the_gke_agent_can_use(default):
    key = default.one("gcp:kms/cryptoKey:CryptoKey", "primary-secrets-key")
    assert inputs(key)["rotationPeriod"] == "7776000s"
    assert cluster(default)["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key.outputs["id"]}
    grant = inputs(default.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "primary-secrets-key-gke"))
    assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant["member"] == "serviceAccount:service-123456789012@container-engine-robot.iam.gserviceaccount.com"
    assert default.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "primary-secrets-key-gke").urn in \
        default.one("gcp:container/cluster:Cluster", "primary-gke").dependencies


def test_nodes_use_a_dedicated_least_privilege_service_account(default):
    sa = default.one("gcp:serviceaccount/account:Account", "primary-nodes-sa").outputs["email"]
    assert not sa.endswith("-compute@developer.gserviceaccount.com")
    roles = {inputs(r)["role"] for r in default.by_type("gcp:projects/iAMMember:IAMMember")}
    assert roles == {"roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"}
    for p in pools(default).values():
        assert inputs(p)["nodeConfig"]["serviceAccount"] == sa
    assert cluster(default)["nodeConfig"]["serviceAccount"] == sa


def test_every_pool_is_shielded_with_gke_metadata_and_auto_repair(default):
    for p in pools(default).values():
        n = inputs(p)["nodeConfig"]
        assert n["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert n["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert inputs(p)["management"] == {"autoRepair": True, "autoUpgrade": True}


def test_gpu_pools_tainted_autoscaled_and_spot(default):
    a100, l4 = inputs(pools(default)["primary-a100"]), inputs(pools(default)["primary-l4"])
    for p in (a100, l4):
        assert p["nodeConfig"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert l4["autoscaling"] == {"totalMinNodeCount": 0, "totalMaxNodeCount": 12, "locationPolicy": "ANY"}
    assert a100["autoscaling"]["totalMaxNodeCount"] == 3
    assert l4["nodeConfig"]["spot"] is True and a100["nodeConfig"]["spot"] is False
    # The system pool is the platform's; tenants' CPU work goes to the untainted `general` pool.
    assert inputs(pools(default)["primary-system"])["nodeConfig"]["taints"] == [
        {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert inputs(pools(default)["primary-general"])["nodeConfig"].get("taints") is None


def test_guest_accelerators_follow_the_catalog_and_sharing(default):
    a100 = inputs(pools(default)["primary-a100"])["nodeConfig"]["guestAccelerators"][0]
    assert (a100["type"], a100["count"], a100["gpuPartitionSize"]) == ("nvidia-tesla-a100", 1, "1g.5gb")
    assert a100["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "DEFAULT"}
    l4 = inputs(pools(default)["primary-l4"])["nodeConfig"]["guestAccelerators"][0]
    assert l4["gpuSharingConfig"] == {"gpuSharingStrategy": "TIME_SHARING", "maxSharedClientsPerGpu": 4}


def test_node_counts_belong_to_the_autoscaler(default):
    for p in pools(default).values():
        assert set(p.ignore_changes) >= {"nodeCount", "initialNodeCount"}
        assert inputs(p)["ignoreNodeCountChanges"] is True
    assert cluster(default)["clusterAutoscaling"]["autoscalingProfile"] == "OPTIMIZE_UTILIZATION"


# The node label GKE reads to skip its own device plugin, as NVIDIA's GPU Operator guide for GKE
# sets it (https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/google-gke.html).
NO_GKE_DEVICE_PLUGIN_LABEL = "gke-no-default-nvidia-gpu-device-plugin"


def test_gpu_operator_mode_hands_the_device_plugin_over(default):
    labels = inputs(pools(default)["primary-l4"])["nodeConfig"]["labels"]
    assert NO_GKE_DEVICE_PLUGIN_LABEL not in labels
    run = build(gpu_driver="gpu-operator", gpu_pools=(GpuPoolSpec(name="l4", machine_type="g2-standard-8"),))
    labels = inputs(pools(run)["primary-l4"])["nodeConfig"]["labels"]
    assert labels[NO_GKE_DEVICE_PLUGIN_LABEL] == "true"
    assert labels["ai-platform.io/gpu-model"] == "l4"


def test_kubeconfig_is_secret_and_uses_the_gke_auth_plugin(default):
    provider = default.one("pulumi:providers:kubernetes", "primary-k8s")
    assert is_secret(provider.inputs["kubeconfig"])
    user = json.loads(inputs(provider)["kubeconfig"])["users"][0]["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"


def test_protect_covers_cluster_and_key():
    run = build(protect=True, gpu_pools=())
    assert run.one("gcp:container/cluster:Cluster", "primary-gke").protect
    assert run.one("gcp:kms/cryptoKey:CryptoKey", "primary-secrets-key").protect
    assert cluster(run)["deletionProtection"] is True
    assert cluster(build(gpu_pools=()))["deletionProtection"] is False


def test_subnet_ranges_do_not_overlap():
    import ipaddress

    nets = [ipaddress.ip_network(c) for c in subnet_ranges("10.0.0.0/16")]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
