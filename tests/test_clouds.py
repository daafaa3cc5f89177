"""One config, four clouds: moving between clouds is a change of `cloud:` (plus that
cloud's machine types), and the Kubernetes layer stays the same."""

from __future__ import annotations

import pytest

from stacks import validate
from stacks.config import ConfigError, parse, physical_name

from .conftest import CLOUD_STACKS, inputs

STACKS = CLOUD_STACKS


@pytest.fixture(scope="module")
def plans(cloud_plans):
    return cloud_plans


@pytest.mark.parametrize("cloud", list(STACKS))
def test_prod_plans_clean_on_every_cloud(plans, cloud):
    result = plans[cloud]
    assert result.exit_code == 0, (result.config_errors, result.violations, result.findings)
    (component,) = [r for r in result.run.registrations if r.type.startswith("ai-platform:clusters:")]
    assert result.run.component_outputs[component.urn]["cloud"] == cloud


def _kubernetes_layer(result) -> dict:
    """Kubernetes objects of the platform layer (not the ones a cluster component makes
    for its own cloud, such as EKS's gp3 StorageClass)."""
    clusters = {r.urn for r in result.run.registrations if r.type.startswith("ai-platform:clusters:")}
    objects = {}
    for r in result.run.resources:
        if r.custom and validate.is_kubernetes_object(r.type) and r.parent not in clusters:
            p = inputs(r)
            objects[(r.type, p["metadata"].get("namespace"), p["metadata"]["name"])] = p
    return objects


# What a cloud's admission rules add to the platform layer (GKE: critical pods need a quota).
# GKE admits critical-priority pods outside kube-system only with a quota scoped to the class.
CLOUD_ONLY = {"gcp": {("kubernetes:core/v1:ResourceQuota", "gpu-operator", "gpu-operator-quota"),
                      ("kubernetes:core/v1:ResourceQuota", "monitoring", "node-agents-quota")}}


def test_kubernetes_layer_is_identical_on_every_cloud(plans):
    layers = {cloud: {k: v for k, v in _kubernetes_layer(result).items() if k not in CLOUD_ONLY.get(cloud, set())}
              for cloud, result in plans.items()}
    tenants = {"research", "recsys", "nlp"}
    for cloud, layer in layers.items():
        # The same objects everywhere (GPU pool flavors included: pools are named by role)...
        assert set(layer) == set(layers["aws"]), cloud
        # ...and the tenants' namespace kits identical to the letter.
        kit = {k: v for k, v in layer.items() if k[1] in tenants or (k[0].endswith(":Namespace") and k[2] in tenants)}
        assert kit == {k: v for k, v in layers["aws"].items() if k in kit}, cloud
        assert len(kit) == 3 * 11  # namespace, 2 quotas, limits, 4 network policies, authz, queue, admins


def test_gpu_taint_on_every_cloud(plans):
    taints = {}
    for cloud, result in plans.items():
        for r in result.run.resources:
            p = inputs(r)
            if r.type == "aws:eks/nodeGroup:NodeGroup" and p["amiType"].endswith("NVIDIA"):
                taints.setdefault(cloud, set()).update(f"{t['key']}={t['value']}" for t in p["taints"])
            elif r.type == "gcp:container/nodePool:NodePool" and p["nodeConfig"].get("guestAccelerators"):
                taints.setdefault(cloud, set()).update(f"{t['key']}={t['value']}" for t in p["nodeConfig"]["taints"])
            elif r.type == "azure-native:containerservice:AgentPool" and "ai-platform.io/gpu-model" in p["nodeLabels"]:
                taints.setdefault(cloud, set()).add(p["nodeTaints"][0].split(":")[0])
    assert taints == {"aws": {"nvidia.com/gpu=true"}, "gcp": {"nvidia.com/gpu=present"},
                      "azure": {"nvidia.com/gpu=present"}}


BASE = {"environment": "prod", "tenants": [{"name": "research", "gpus": 8}]}


def problems(cluster: dict, **extra) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        parse({**BASE, **extra, "clusters": [{"name": "primary", **cluster}]})
    return exc.value.problems


@pytest.mark.parametrize(
    ("cluster", "path", "message"),
    [
        ({"cloud": "aws", "region": "us-west-2", "gpuPools": [{"name": "a100", "machineType": "p4d.24xlarge", "gpus": 4}]},
         "clusters[0].gpuPools[0].gpus", "pool 'a100': p4d.24xlarge has 8 GPU(s), not 4"),
        ({"cloud": "gcp", "project": "acme-ml", "region": "us-central1",
          "gpuPools": [{"name": "a100", "machineType": "a2-highgpu-1g", "accelerator": "nvidia-l4"}]},
         "clusters[0].gpuPools[0].accelerator", "pool 'a100': a2-highgpu-1g needs accelerator nvidia-tesla-a100, not nvidia-l4"),
        ({"cloud": "azure", "region": "westeurope",
          "gpuPools": [{"name": "a100", "machineType": "Standard_NC24ads_A100_v4", "gpuModel": "t4"}]},
         "clusters[0].gpuPools[0].gpuModel", "pool 'a100': Standard_NC24ads_A100_v4 carries a100-80gb, not t4"),
        ({"cloud": "gcp", "project": "acme-ml", "region": "us-central1",
          "gpuPools": [{"name": "t4", "machineType": "n1-standard-8"}]},
         "clusters[0].gpuPools[0].accelerator", "takes attachable GPUs"),
        ({"cloud": "existing", "kubeconfigPath": "examples/kind-kubeconfig.yaml", "gpuPools": [{"name": "a100"}]},
         "clusters[0].gpuPools[0].gpus", "existing clusters need gpus and gpuModel"),
    ],
)
def test_gpu_model_and_machine_type_must_agree(cluster, path, message):
    assert any(p == f"ai-platform:{path}" and message in m for p, m in problems(cluster)), problems(cluster)


@pytest.mark.parametrize(
    ("cluster", "path", "message"),
    [
        ({"cloud": "gcp", "region": "us-central1"}, "clusters[0].project", "required for gcp clusters"),
        ({"cloud": "aws", "region": "us-west-2", "project": "x"}, "clusters[0].project", "only applies to gcp clusters"),
        ({"cloud": "gcp", "project": "acme-ml", "region": "us-central1", "accessEntries": []},
         "clusters[0].accessEntries", "only applies to aws clusters"),
        ({"cloud": "existing"}, "clusters[0].kubeconfig", "exactly one of kubeconfig or kubeconfigPath"),
        ({"cloud": "existing", "kubeconfig": "apiVersion: v1", "kubeconfigPath": "examples/kind-kubeconfig.yaml"},
         "clusters[0].kubeconfig", "exactly one of kubeconfig or kubeconfigPath"),
        ({"cloud": "aws", "region": "us-west-2", "accessEntries": [
            {"principalArn": "arn:aws:iam::123456789012:role/ml", "kubernetesGroups": ["a"]},
            {"principalArn": "arn:aws:iam::123456789012:role/ml", "kubernetesGroups": ["b"]}]},
         "clusters[0].accessEntries[1].principalArn", "duplicate principal"),
        ({"cloud": "existing", "kubeconfigPath": "nope.yaml"}, "clusters[0].kubeconfigPath", "cannot read 'nope.yaml'"),
        ({"cloud": "existing", "kubeconfig": "x", "region": "us-west-2"}, "clusters[0].region", "only applies to"),
        ({"cloud": "azure", "region": "westeurope", "gpuPools": [{"name": "a100-pool", "machineType": "Standard_NC24ads_A100_v4"}]},
         "clusters[0].gpuPools", "1-12 lower-case letters and digits"),
        ({"cloud": "azure", "region": "West Europe"}, "clusters[0].region", "should match pattern"),
        ({"cloud": "gcp", "project": "acme-ml", "region": "us-central1",
          "gpuPools": [{"name": "l4", "machineType": "g2-standard-8", "sharing": {"mode": "mig", "profile": "all-1g.10gb"}}]},
         "clusters[0].gpuPools[0].sharing", "l4 GPUs do not support MIG"),
        ({"cloud": "gcp", "project": "acme-ml", "region": "us-central1",
          "gpuPools": [{"name": "l4", "machineType": "g2-standard-8", "sharing": {"mode": "time-slicing"}}]},
         "clusters[0].gpuPools[0].sharing.replicas", "required for time-slicing"),
        ({"cloud": "aws", "region": "us-west-2", "systemPool": {"machineType": "m6i.large", "min": 0}},
         "clusters[0].systemPool.min", "must be >= 1"),
    ],
)
def test_cloud_specific_keys(cluster, path, message):
    assert any(p == f"ai-platform:{path}" and message in m for p, m in problems(cluster)), problems(cluster)


def test_sharing_outside_the_cloud_needs_the_gpu_operator():
    cluster = {"cloud": "aws", "region": "us-west-2", "gpuPools": [
        {"name": "l4", "machineType": "g6.xlarge", "max": 8, "sharing": {"mode": "time-slicing", "replicas": 4}}]}
    found = problems(cluster, addons={"gpuOperator": {"enabled": False}})
    assert ("ai-platform:clusters[0].gpuPools[0].sharing",
            "pool 'l4': time-slicing on aws needs the GPU Operator (addons.gpuOperator)") in found
    # With the operator (the default) the same pool is fine.
    parse({**BASE, "clusters": [{"name": "primary", **cluster}]})


def test_physical_names_fit_gke_and_never_change():
    assert physical_name("ai-platform", "prod", "primary") == "ai-platform-prod-primary"
    long = physical_name("ai-platform", "customer-acme-production-eu", "primary")
    assert len(long) <= 40 and long == physical_name("ai-platform", "customer-acme-production-eu", "primary")
    assert long != physical_name("ai-platform", "customer-acme-production-eu", "burst")
