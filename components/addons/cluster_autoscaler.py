"""ClusterAutoscaler: the cluster-autoscaler chart, for clouds without a native autoscaler."""

from __future__ import annotations

import pulumi

from ..clusters.base import Cluster
from . import versions
from .common import merge, release, system_placement

NAMESPACE = "kube-system"


class ClusterAutoscaler(pulumi.ComponentResource):
    """Installs the pinned cluster-autoscaler chart with the cloud settings the cluster
    provides (`cluster.autoscaler`), hardened and pinned to the system nodes."""

    def __init__(self, name: str, cluster: Cluster, opts: pulumi.ResourceOptions | None = None):
        if cluster.autoscaler is None:
            raise ValueError(f"cluster {cluster.name!r} scales natively; it needs no cluster-autoscaler chart")
        tag = versions.CLUSTER_AUTOSCALER_TAGS.get(cluster.kubernetes_version)
        if tag is None:
            raise ValueError(
                f"no pinned cluster-autoscaler image for Kubernetes {cluster.kubernetes_version}; "
                f"supported: {', '.join(versions.CLUSTER_AUTOSCALER_TAGS)}"
            )
        super().__init__("ai-platform:addons:ClusterAutoscaler", name, None, opts)
        common = {
            "image": {"repository": versions.CLUSTER_AUTOSCALER_IMAGE, "tag": tag},
            "extraArgs": {
                # GPU pools of one model in several zones scale together.
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "skip-nodes-with-system-pods": False,
                "scale-down-unneeded-time": "10m",
            },
            **system_placement(cluster),
            "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containerSecurityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        values = pulumi.Output.from_input(cluster.autoscaler.values).apply(lambda v: merge(common, v))
        self.release = release(
            f"{name}-release", versions.CLUSTER_AUTOSCALER, NAMESPACE, values, self, cluster,
            release_name="cluster-autoscaler",
        )
        self.register_outputs({"status": self.release.status})
