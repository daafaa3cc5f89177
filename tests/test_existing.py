"""ExistingCluster: the platform layer on a cluster you already have."""

from __future__ import annotations

from components.clusters.base import GpuPoolSpec
from components.clusters.existing import ExistingCluster, ExistingClusterArgs, endpoint_and_ca
from stacks.engine import is_secret

from .conftest import REPO, inputs, run_component

KUBECONFIG = (REPO / "examples" / "kind-kubeconfig.yaml").read_text()


def test_adopts_the_kubeconfig_as_a_secret_and_creates_no_cloud_resources():
    holder = {}

    def program():
        holder["c"] = ExistingCluster("lab", ExistingClusterArgs(
            kubeconfig=KUBECONFIG, context="kind-ai-platform",
            gpu_pools=(GpuPoolSpec(name="a100", gpu_model="a100", gpus=8, min=2, max=2),)))

    run = run_component(program)
    assert [r.type for r in run.resources if r.custom] == ["pulumi:providers:kubernetes"]
    provider = run.one("pulumi:providers:kubernetes", "lab-k8s")
    assert is_secret(provider.inputs["kubeconfig"]) and inputs(provider)["context"] == "kind-ai-platform"
    cluster = holder["c"]
    assert cluster.autoscaler is None and cluster.gpu_pools[0].gpus == 8
    assert str(cluster.gpu_pools[0].taint) == "nvidia.com/gpu=present:NoSchedule"


def test_endpoint_and_ca_come_from_the_chosen_context():
    server, ca = endpoint_and_ca(KUBECONFIG, None)
    assert server == "https://127.0.0.1:6443" and ca.startswith("LS0t")
    assert endpoint_and_ca("not: [a kubeconfig", None) == ("", "")
