"""ExistingCluster: a cluster you already have (kind, minikube, on-prem, another IaC's).

Nothing is created at the cloud level: the platform layer (add-ons, tenants) goes onto
the cluster the kubeconfig points at, and GPU pools are described, not created.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import yaml

from .base import ClusterComponent, ClusterSpec, GpuDriver


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


class ExistingCluster(ClusterComponent):
    """Adopts an existing cluster through its kubeconfig; GPU pools come from config."""

    cloud = "existing"
    type_token = "ai-platform:clusters:ExistingCluster"
    # Existing GPU nodes are expected to carry the NVIDIA driver already.
    gpu_operator_values = {"driver": {"enabled": False}}
    autoscaler = None  # node scaling is the cluster owner's business

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, args, args.gpu_driver, opts)
        self.system_node_labels = {}  # no known system pool: platform pods go anywhere
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        server, ca = endpoint_and_ca(args.kubeconfig, args.context)
        self.endpoint = pulumi.Output.from_input(server)
        self.api_server = self.endpoint
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
