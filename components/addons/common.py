"""What every add-on does the same way: its namespace, its Helm release, its place on
the system nodes."""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from ..clusters.base import CRITICAL_PRIORITY_CLASSES, Cluster, Taint
from .versions import Chart


def merge(base: dict, extra: dict) -> dict:
    """Deep merge: `extra` wins, maps merge."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# Placement, in one place: every toleration and node selector comes from the pools'
# own taints and labels (cluster.system_taints, gpu_pools[].taints, cpu_pools[].taints).


def tolerations(taints) -> list[dict]:
    """One `Exists` toleration per distinct (key, effect), in a stable order."""
    seen = dict.fromkeys((t.key, t.effect) for t in taints)
    return [{"key": key, "operator": "Exists", "effect": effect} for key, effect in seen]


def system_placement(cluster: Cluster) -> dict:
    """nodeSelector and tolerations that put a platform controller on the system pool."""
    return {"nodeSelector": dict(cluster.system_node_labels), "tolerations": tolerations(cluster.system_taints)}


def system_affinity(cluster: Cluster) -> dict:
    """The same as a required node affinity, for charts that have no nodeSelector value."""
    if not cluster.system_node_labels:
        return {}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in cluster.system_node_labels.items()]}
    ]}}}


def gpu_tolerations(cluster: Cluster) -> list[dict]:
    """What a pod needs to run on every GPU pool (GPU taints and the cloud's spot taints)."""
    return tolerations(t for p in cluster.gpu_pools for t in p.taints)


def every_node_tolerations(cluster: Cluster) -> list[dict]:
    """What a node agent (DaemonSet) needs to run on every pool of the cluster."""
    pools: list[Taint] = [*cluster.system_taints, *(t for p in cluster.cpu_pools for t in p.taints)]
    return tolerations([*pools, *(t for p in cluster.gpu_pools for t in p.taints)])


def critical_priority_quota(name: str, quota_name: str, ns: pulumi.Input[str], parent: pulumi.Resource,
                            pods: int = 100) -> k8s.core.v1.ResourceQuota:
    """The ResourceQuota GKE wants before it admits system-node-critical/system-cluster-critical
    pods outside kube-system (cluster.critical_pods_need_quota)."""
    return k8s.core.v1.ResourceQuota(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=quota_name, namespace=ns),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(
            hard={"pods": str(pods)},
            scope_selector=k8s.core.v1.ScopeSelectorArgs(match_expressions=[
                k8s.core.v1.ScopedResourceSelectorRequirementArgs(
                    scope_name="PriorityClass", operator="In", values=list(CRITICAL_PRIORITY_CLASSES))
            ]),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def namespace(
    name: str,
    ns: str,
    pod_security: Literal["restricted", "baseline", "privileged"],
    parent: pulumi.Resource,
    extra_labels: dict[str, str] | None = None,
) -> k8s.core.v1.Namespace:
    """A platform namespace with Pod Security Admission at the level its workloads need."""
    return k8s.core.v1.Namespace(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=ns,
            labels={
                "app.kubernetes.io/managed-by": "pulumi",
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/warn": "restricted",
                **(extra_labels or {}),
            },
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def release(
    name: str,
    chart: Chart,
    namespace: pulumi.Input[str],
    values: pulumi.Input[dict],
    parent: pulumi.Resource,
    cluster: Cluster,
    release_name: str | None = None,
    depends_on: list[pulumi.Resource] | None = None,
    protect: bool = False,
) -> k8s.helm.v3.Release:
    """A pinned Helm release that waits for the system nodes (and nothing else unless asked)."""
    return k8s.helm.v3.Release(
        name,
        name=release_name or chart.name.rsplit("/", 1)[-1],
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
        namespace=namespace,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        timeout=900,
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[*cluster.nodes_ready, *(depends_on or [])], protect=protect
        ),
    )


class KubernetesObject(pulumi.CustomResource):
    """Any Kubernetes object by apiVersion and kind, with top-level fields besides `spec`
    (e.g. Kueue's WorkloadPriorityClass has `value`). Same type token as CustomResource."""

    def __init__(
        self,
        resource_name: str,
        api_version: str,
        kind: str,
        metadata: k8s.meta.v1.ObjectMetaArgs | dict,
        fields: dict,
        opts: pulumi.ResourceOptions | None = None,
    ):
        from pulumi_kubernetes import _utilities

        props = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=_utilities.get_version()))
        # The provider's type tokens spell the core group out: apiVersion v1 is `core/v1`.
        group_version = api_version if "/" in api_version else f"core/{api_version}"
        super().__init__(f"kubernetes:{group_version}:{kind}", resource_name, props, opts)
