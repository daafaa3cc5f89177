"""ExistingCluster: a cluster you already have (kind, minikube, on-prem, another IaC's).

Nothing is created at the cloud level: the platform layer (add-ons, tenants) goes onto
the cluster the kubeconfig points at, and GPU pools are described, not created.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import yaml

from .base import ClusterSpec, GpuDriver, GpuPool, resolve_gpu_pools


class ExistingClusterArgs(ClusterSpec):
    """Inputs of `ExistingCluster`."""

    kubeconfig: str
    """The kubeconfig's content (treated as a secret)."""
    context: str | None = None
    """Context to use. @default the kubeconfig's current context"""
    gpu_driver: GpuDriver = "cloud"
    """Who runs the device plugin: "cloud" (already on the nodes) or "gpu-operator". @default cloud"""


def endpoint_and_ca(kubeconfig: str, context: str | None) -> tuple[str, str]:
    """The API server and CA data of the chosen context ("" when they cannot be read)."""
    try:
        doc = yaml.safe_load(kubeconfig)
        ctx_name = context or doc.get("current-context")
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        return cluster.get("server", ""), cluster.get("certificate-authority-data", "")
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, StopIteration):
        return "", ""


class ExistingCluster(pulumi.ComponentResource):
    """Adopts an existing cluster through its kubeconfig; GPU pools come from config."""

    cloud = "existing"

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        pools = resolve_gpu_pools(self.cloud, args.gpu_pools, args.gpu_driver)
        super().__init__("ai-platform:clusters:ExistingCluster", name, None, opts)
        self.name = name
        self.args = args
        self.kubernetes_version = args.kubernetes_version
        self.gpu_pools: tuple[GpuPool, ...] = pools
        self.system_node_labels: dict[str, str] = {}
        self.gpu_driver = args.gpu_driver
        # Existing GPU nodes are expected to carry the NVIDIA driver already.
        self.gpu_operator_values = {"driver": {"enabled": False}}
        self.internal_lb_annotations: dict[str, str] = {}
        self.storage_class = None
        self.istio_platform = None
        self.autoscaler = None  # node scaling is the cluster owner's business
        self.nodes_ready: list[pulumi.Resource] = []
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        server, ca = endpoint_and_ca(args.kubeconfig, args.context)
        self.endpoint = pulumi.Output.from_input(server)
        self.certificate_authority = pulumi.Output.secret(ca)
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            context=args.context,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {"cloud": self.cloud, "kubernetesVersion": self.kubernetes_version, "endpoint": self.endpoint}
        )
