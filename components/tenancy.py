"""Tenant: the per-tenant namespace kit on one cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from .clusters.base import GPU_RESOURCE
from .spec import DnsLabel, Quantity, Spec

LABEL_TENANT = "ai-platform.io/tenant"
LOCAL_QUEUE = "default"  # tenants submit with `kueue.x-k8s.io/queue-name: default`
# Namespaces the platform or Kubernetes own; a tenant may never take one over.
RESERVED_NAMESPACES = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "cert-manager", "istio-system",
     "kueue-system", "kserve", "knative-serving", "knative-operator", "gpu-operator", "monitoring"}
)


class ContainerDefaults(Spec):
    """LimitRange defaults for containers that do not set their own."""

    cpu_request: Quantity = "100m"
    """Default CPU request. @default 100m"""
    memory_request: Quantity = "256Mi"
    """Default memory request. @default 256Mi"""
    cpu_limit: Quantity = "1"
    """Default CPU limit. @default 1"""
    memory_limit: Quantity = "1Gi"
    """Default memory limit. @default 1Gi"""


class TenantSpec(Spec):
    """One tenant: a namespace with quotas, limits, isolation and access."""

    name: DnsLabel
    """Tenant and namespace name (a DNS label, not a reserved namespace)."""
    gpus: int = Field(ge=0, le=100000)
    """Guaranteed GPUs: the tenant's nominal Kueue quota."""
    borrow_gpus: int = Field(default=0, ge=0, le=100000)
    """GPUs it may borrow from idle quota of its cohort; the namespace quota is gpus + borrowGpus. @default 0"""
    cpu: Quantity = "16"
    """Quota on `requests.cpu`. @default 16"""
    memory: Quantity = "64Gi"
    """Quota on `requests.memory` and `limits.memory`. @default 64Gi"""
    pods: int = Field(default=100, ge=1, le=100000)
    """Most pods at once. @default 100"""
    storage: Quantity = "500Gi"
    """Quota on `requests.storage` over all PVCs. @default 500Gi"""
    pvcs: int = Field(default=20, ge=0, le=10000)
    """Most PersistentVolumeClaims. @default 20"""
    admin_groups: tuple[str, ...] = ()
    """Groups bound to the built-in `admin` ClusterRole in the namespace. @default []"""
    viewer_groups: tuple[str, ...] = ()
    """Groups bound to the built-in `view` ClusterRole in the namespace. @default []"""
    container_defaults: ContainerDefaults = ContainerDefaults()
    """Defaults for containers without requests/limits. @default 100m/256Mi requests, 1/1Gi limits"""

    @model_validator(mode="after")
    def _not_reserved(self) -> TenantSpec:
        if self.name in RESERVED_NAMESPACES or self.name.startswith("kube-"):
            raise ValueError(f"{self.name!r} is a reserved namespace")
        return self


@dataclass(frozen=True)
class TenantPlatform:
    """What the platform on this cluster offers a tenant (from the enabled add-ons)."""

    mesh_gateway_principal: str | None = None
    """Istio is on: inject sidecars, admit only same-namespace and gateway traffic."""
    mesh_namespace: str | None = None
    """Where istiod runs; sidecars must reach it."""
    allowed_source_namespaces: tuple[str, ...] = ()
    """Platform namespaces that may call into the tenant (gateway, Knative activator, Prometheus)."""
    local_queues: tuple[tuple[str, str], ...] = ()
    """Kueue is on: (LocalQueue name, ClusterQueue name suffix) pairs; ("default", "") feeds the
    tenant's own ClusterQueue, ("burst", "-burst") the one that dispatches to a burst cluster."""


def _meta(name: str, namespace: str, tenant: str) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels={LABEL_TENANT: tenant, "app.kubernetes.io/managed-by": "pulumi"},
    )


class Tenant(pulumi.ComponentResource):
    """Namespace (Pod Security `restricted`), ResourceQuota with a GPU quota, LimitRange,
    default-deny NetworkPolicies and RoleBindings for the tenant's groups.

    Object names are fixed from the tenant name, so adding a tenant never touches another.
    """

    def __init__(
        self,
        name: str,
        spec: TenantSpec,
        kubernetes_version: str,
        platform: TenantPlatform = TenantPlatform(),
        crds: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`crds`: what installs the Istio and Kueue CRDs, when `platform` asks for an
        AuthorizationPolicy or a LocalQueue. Only those two objects wait for them: the
        namespace, quota, limits, policies and bindings go in as soon as the cluster is up."""
        super().__init__("ai-platform:tenancy:Tenant", name, None, opts)
        ns = spec.name
        child = pulumi.ResourceOptions(parent=self)
        pss = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", f"v{kubernetes_version}"))
        }
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns,
                labels={
                    LABEL_TENANT: ns,
                    "app.kubernetes.io/managed-by": "pulumi",
                    **pss,
                    **({"istio-injection": "enabled"} if platform.mesh_gateway_principal else {}),
                },
            ),
            opts=child,
        )
        # Everything else lives in the namespace, so it waits for it.
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        custom = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *(crds or [])])

        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=_meta("tenant-quota", ns, ns),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "requests.cpu": spec.cpu,
                    "requests.memory": spec.memory,
                    "limits.memory": spec.memory,
                    # Kueue guarantees `gpus` and lends up to `borrowGpus` more: the namespace
                    # quota is the ceiling of both, so the two never disagree.
                    f"requests.{GPU_RESOURCE}": str(spec.gpus + spec.borrow_gpus),
                    "pods": str(spec.pods),
                    "persistentvolumeclaims": str(spec.pvcs),
                    "requests.storage": spec.storage,
                    # Tenants reach the outside only through the platform's ingress.
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                }
            ),
            opts=in_ns,
        )
        d = spec.container_defaults
        self.limit_range = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=_meta("tenant-limits", ns, ns),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default_request={"cpu": d.cpu_request, "memory": d.memory_request},
                        default={"cpu": d.cpu_limit, "memory": d.memory_limit},
                    )
                ]
            ),
            opts=in_ns,
        )
        self.network_policies = self._network_policies(name, ns, in_ns, platform)
        self.authorization_policy = None
        if platform.mesh_gateway_principal:
            self.authorization_policy = k8s.apiextensions.CustomResource(
                f"{name}-authz",
                api_version="security.istio.io/v1",
                kind="AuthorizationPolicy",
                metadata=_meta("tenant-isolation", ns, ns),
                spec={
                    "action": "ALLOW",
                    "rules": [
                        {"from": [{"source": {"namespaces": [ns, *platform.allowed_source_namespaces]}}]},
                        {"from": [{"source": {"principals": [platform.mesh_gateway_principal]}}]},
                    ],
                },
                opts=custom,
            )
        self.local_queues = [
            k8s.apiextensions.CustomResource(
                f"{name}-queue" if queue == LOCAL_QUEUE else f"{name}-queue-{queue}",
                api_version="kueue.x-k8s.io/v1beta2",
                kind="LocalQueue",
                metadata=_meta(queue, ns, ns),
                spec={"clusterQueue": f"{ns}{suffix}"},
                opts=custom,
            )
            for queue, suffix in platform.local_queues
        ]
        self.role_bindings = [
            k8s.rbac.v1.RoleBinding(
                f"{name}-{role}s",
                metadata=_meta(f"tenant-{role}s", ns, ns),
                role_ref=k8s.rbac.v1.RoleRefArgs(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_role
                ),
                subjects=[
                    k8s.rbac.v1.SubjectArgs(kind="Group", name=g, api_group="rbac.authorization.k8s.io")
                    for g in groups
                ],
                opts=in_ns,
            )
            for role, cluster_role, groups in (
                ("admin", "admin", spec.admin_groups),
                ("viewer", "view", spec.viewer_groups),
            )
            if groups
        ]
        self.register_outputs({"namespace": self.namespace.metadata.name})

    def _network_policies(self, name: str, ns: str, opts: pulumi.ResourceOptions, platform: TenantPlatform) -> list:
        everything = k8s.meta.v1.LabelSelectorArgs()
        policy = k8s.networking.v1.NetworkPolicy
        spec = k8s.networking.v1.NetworkPolicySpecArgs

        def namespaces(names) -> list:
            return [
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": n})
                )
                for n in names
            ]

        extra = []
        if platform.allowed_source_namespaces or platform.mesh_namespace:
            types = (["Ingress"] if platform.allowed_source_namespaces else []) + (
                ["Egress"] if platform.mesh_namespace else [])
            extra.append(
                policy(
                    f"{name}-allow-platform",
                    metadata=_meta("allow-platform", ns, ns),
                    spec=spec(
                        pod_selector=everything,
                        policy_types=types,
                        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=namespaces(platform.allowed_source_namespaces))]
                        if platform.allowed_source_namespaces else None,
                        # Sidecars fetch their config and certificates from istiod.
                        egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=namespaces([platform.mesh_namespace]))]
                        if platform.mesh_namespace else None,
                    ),
                    opts=opts,
                )
            )
        return extra + [
            policy(
                f"{name}-default-deny",
                metadata=_meta("default-deny", ns, ns),
                spec=spec(pod_selector=everything, policy_types=["Ingress", "Egress"]),
                opts=opts,
            ),
            policy(
                f"{name}-allow-dns",
                metadata=_meta("allow-dns", ns, ns),
                spec=spec(
                    pod_selector=everything,
                    policy_types=["Egress"],
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[
                                k8s.networking.v1.NetworkPolicyPeerArgs(
                                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                    ),
                                    pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels={"k8s-app": "kube-dns"}
                                    ),
                                )
                            ],
                            ports=[
                                k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=53) for p in ("UDP", "TCP")
                            ],
                        )
                    ],
                ),
                opts=opts,
            ),
            policy(
                f"{name}-allow-same-namespace",
                metadata=_meta("allow-same-namespace", ns, ns),
                spec=spec(
                    pod_selector=everything,
                    policy_types=["Ingress", "Egress"],
                    ingress=[
                        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=everything)]
                        )
                    ],
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=everything)]
                        )
                    ],
                ),
                opts=opts,
            ),
        ]
