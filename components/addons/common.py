"""What every add-on does the same way: its namespace, its Helm release, its place on
the system nodes."""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from ..clusters.base import Cluster
from .versions import Chart

# AKS taints its system pool; EKS and GKE system nodes carry no taint, so this is harmless there.
SYSTEM_TOLERATIONS = [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]


def merge(base: dict, extra: dict) -> dict:
    """Deep merge: `extra` wins, maps merge."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def system_placement(cluster: Cluster) -> dict:
    """nodeSelector and tolerations that put a workload on the cluster's system nodes."""
    return {"nodeSelector": dict(cluster.system_node_labels), "tolerations": list(SYSTEM_TOLERATIONS)}


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
