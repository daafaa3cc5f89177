"""Cluster components: one per cloud, all with the shape of `base.Cluster`."""

from .aks import AksCluster, AksClusterArgs
from .base import Cluster, ClusterSpec, EndpointSpec, GpuPool, GpuPoolSpec, GpuSharing, NetworkSpec, NodePoolSpec
from .eks import AccessEntrySpec, EksCluster, EksClusterArgs
from .existing import ExistingCluster, ExistingClusterArgs
from .gke import GkeCluster, GkeClusterArgs

# cloud -> (component, its args)
CLUSTER_TYPES = {
    "aws": (EksCluster, EksClusterArgs),
    "gcp": (GkeCluster, GkeClusterArgs),
    "azure": (AksCluster, AksClusterArgs),
    "existing": (ExistingCluster, ExistingClusterArgs),
}

__all__ = [
    "CLUSTER_TYPES",
    "AccessEntrySpec",
    "AksCluster",
    "AksClusterArgs",
    "Cluster",
    "ClusterSpec",
    "EksCluster",
    "EksClusterArgs",
    "EndpointSpec",
    "ExistingCluster",
    "ExistingClusterArgs",
    "GkeCluster",
    "GkeClusterArgs",
    "GpuPool",
    "GpuPoolSpec",
    "GpuSharing",
    "NetworkSpec",
    "NodePoolSpec",
]
