"""ClusterAutoscaler: the cluster-autoscaler chart, for clouds without a native autoscaler."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..clusters.base import Cluster
from . import versions

NAMESPACE = "kube-system"


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


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
        chart = versions.CLUSTER_AUTOSCALER
        common = {
            "image": {"repository": versions.CLUSTER_AUTOSCALER_IMAGE, "tag": tag},
            "extraArgs": {
                # GPU pools of one model in several zones scale together.
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "skip-nodes-with-system-pods": False,
                "scale-down-unneeded-time": "10m",
            },
            "nodeSelector": dict(cluster.system_node_labels),
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
        values = pulumi.Output.from_input(cluster.autoscaler.values).apply(lambda v: _merge(common, v))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="cluster-autoscaler",
            chart=chart.name,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=NAMESPACE,
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            max_history=5,
            opts=pulumi.ResourceOptions(
                parent=self, provider=cluster.k8s_provider, depends_on=list(cluster.nodes_ready)
            ),
        )
        self.register_outputs({"status": self.release.status})
