"""Cluster components: one per cloud, all with the shape of `base.Cluster`."""

from .base import Cluster, EndpointSpec, GpuPool, GpuPoolSpec, NetworkSpec, NodePoolSpec
from .eks import AccessEntrySpec, EksCluster, EksClusterArgs

__all__ = [
    "AccessEntrySpec",
    "Cluster",
    "EksCluster",
    "EksClusterArgs",
    "EndpointSpec",
    "GpuPool",
    "GpuPoolSpec",
    "NetworkSpec",
    "NodePoolSpec",
]
