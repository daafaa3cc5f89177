"""Tenant: the per-tenant namespace kit on one cluster."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pulumi
from pydantic import Field, model_validator

from .addons.common import KubernetesObject
from .clusters.base import CRITICAL_PRIORITY_CLASSES, GPU_RESOURCE
from .spec import DnsLabel, Quantity, Spec

LABEL_TENANT = "ai-platform.io/tenant"
# What the platform creates in a tenant namespace carries this label; admission refuses
# tenants any change to such objects (components/guardrails.py).
LABEL_OWNER = "ai-platform.io/owner"
OWNER_PLATFORM = "platform"
# The ClusterRoles tenants' groups are bound to (defined in components/guardrails.py).
ADMIN_ROLE = "ai-platform-tenant-admin"
VIEWER_ROLE = "ai-platform-tenant-viewer"
SUBMITTER_ROLE = "ai-platform-tenant-submitter"
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
    ephemeral_storage_request: Quantity = "1Gi"
    """Default `ephemeral-storage` request (container writable layer, logs, emptyDir). @default 1Gi"""
    ephemeral_storage_limit: Quantity = "20Gi"
    """Default `ephemeral-storage` limit: the kubelet evicts a pod that writes more. @default 20Gi"""


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
    ephemeral_storage: Quantity = "200Gi"
    """Quota on `requests.ephemeral-storage` and `limits.ephemeral-storage`: node disk the tenant's pods may
    claim, so one tenant cannot fill nodes and get its neighbours evicted. @default 200Gi"""
    pvcs: int = Field(default=20, ge=0, le=10000)
    """Most PersistentVolumeClaims. @default 20"""
    admin_groups: tuple[str, ...] = ()
    """Groups bound to the `ai-platform-tenant-admin` ClusterRole in the namespace (see "Tenant security model"
    in the README; on a dedicated MultiKueue manager `ai-platform-tenant-submitter`). @default []"""
    viewer_groups: tuple[str, ...] = ()
    """Groups bound to the `ai-platform-tenant-viewer` ClusterRole in the namespace. @default []"""
    container_defaults: ContainerDefaults = ContainerDefaults()
    """Defaults (cpu/memory/ephemeral-storage) for containers without requests/limits.
    @default 100m/256Mi/1Gi requests, 1/1Gi/20Gi limits"""

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
    """Platform namespaces whose pods may open connections into the tenant (NetworkPolicy): gateway,
    Knative activator and autoscaler, Prometheus."""
    mesh_source_namespaces: tuple[str, ...] = ()
    """Of those, the ones whose callers carry a mesh identity (sidecar), so the AuthorizationPolicy can
    name them. Prometheus has none: it scrapes the sidecar's merged metrics port, which mTLS and the
    AuthorizationPolicy do not cover."""
    local_queues: tuple[tuple[str, str], ...] = ()
    """Kueue is on: (LocalQueue name, ClusterQueue name suffix) pairs; ("default", "") feeds the
    tenant's own ClusterQueue, ("burst", "-burst") the one that dispatches to a burst cluster."""
    submit_only: bool = False
    """A dedicated MultiKueue manager: tenants submit queued jobs that run elsewhere, so no pods
    run here (a zero-pod quota) and admins get the submitter role."""


def _meta(name: str, namespace: str, tenant: str) -> dict:
    return {"name": name, "namespace": namespace,
            "labels": {LABEL_TENANT: tenant, LABEL_OWNER: OWNER_PLATFORM, "app.kubernetes.io/managed-by": "pulumi"}}


ISTIOD_LABELS = {"app": "istiod"}  # the istiod chart's pod label
ISTIOD_SECURE_XDS_PORT = 15012


def _peers(namespaces: Iterable[str]) -> list[dict]:
    return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}} for n in namespaces]


class Tenant(pulumi.ComponentResource):
    """Namespace (Pod Security `restricted`), ResourceQuota with a GPU quota, LimitRange,
    default-deny NetworkPolicies and RoleBindings for the tenant's groups.

    Object names are fixed from the tenant name, so adding a tenant never touches another.
    The objects are registered as plain manifests under their usual type tokens (the plan
    checks each against the Kubernetes OpenAPI schema): the typed SDK classes add alias and
    Output bookkeeping that, at hundreds of tenants, costs more than the objects themselves.
    """

    def __init__(
        self,
        name: str,
        spec: TenantSpec,
        kubernetes_version: str,
        platform: TenantPlatform = TenantPlatform(),
        crds: list[pulumi.Resource] | None = None,
        roles: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`crds`: what installs the Istio and Kueue CRDs, when `platform` asks for an
        AuthorizationPolicy or a LocalQueue. Only those two objects wait for them: the
        namespace, quota, limits, policies and bindings go in as soon as the cluster is up.
        `roles`: the ClusterRoles the RoleBindings name (TenantGuardrails)."""
        super().__init__("ai-platform:tenancy:Tenant", name, None, opts)
        ns = spec.name
        pss = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", f"v{kubernetes_version}"))
        }
        self.namespace = KubernetesObject(
            f"{name}-namespace", "v1", "Namespace",
            {"name": ns, "labels": {
                LABEL_TENANT: ns,
                LABEL_OWNER: OWNER_PLATFORM,
                "app.kubernetes.io/managed-by": "pulumi",
                **pss,
                **({"istio-injection": "enabled"} if platform.mesh_gateway_principal else {}),
            }},
            {}, pulumi.ResourceOptions(parent=self),
        )
        # Everything else lives in the namespace, so it waits for it.
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        custom = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *(crds or [])])

        def obj(role: str, api_version: str, kind: str, obj_name: str, fields: dict, options=in_ns):
            return KubernetesObject(f"{name}-{role}", api_version, kind, _meta(obj_name, ns, ns), fields, options)

        self.quota = obj("quota", "v1", "ResourceQuota", "tenant-quota", {"spec": {"hard": {
            "requests.cpu": spec.cpu,
            "requests.memory": spec.memory,
            "limits.memory": spec.memory,
            # Kueue guarantees `gpus` and lends up to `borrowGpus` more: the namespace
            # quota is the ceiling of both, so the two never disagree. On a submit-only
            # manager nothing runs: its jobs stay suspended while a worker runs their copies.
            f"requests.{GPU_RESOURCE}": "0" if platform.submit_only else str(spec.gpus + spec.borrow_gpus),
            "pods": "0" if platform.submit_only else str(spec.pods),
            "persistentvolumeclaims": str(spec.pvcs),
            "requests.storage": spec.storage,
            # Unlike cpu/memory, a quota on ephemeral-storage does not make it mandatory per container
            # (`validationSet` in kubernetes pkg/quota/v1/evaluator/core/pods.go), so injected sidecars
            # are still admitted; the LimitRange below gives every tenant container a limit.
            "requests.ephemeral-storage": spec.ephemeral_storage,
            "limits.ephemeral-storage": spec.ephemeral_storage,
            # Tenants reach the outside only through the platform's ingress.
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }}})
        # Critical priority classes would let a tenant preempt other tenants' pods and the
        # platform's controllers: a quota of zero pods at those priorities refuses them.
        # https://kubernetes.io/docs/concepts/policy/resource-quotas/#limit-priority-class-consumption-by-default
        self.priority_quota = obj("priority-quota", "v1", "ResourceQuota", "tenant-no-critical-priority", {"spec": {
            "hard": {"pods": "0"},
            "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": list(CRITICAL_PRIORITY_CLASSES)}]},
        }})
        d = spec.container_defaults
        self.limit_range = obj("limits", "v1", "LimitRange", "tenant-limits", {"spec": {"limits": [{
            "type": "Container",
            "defaultRequest": {"cpu": d.cpu_request, "memory": d.memory_request,
                               "ephemeral-storage": d.ephemeral_storage_request},
            "default": {"cpu": d.cpu_limit, "memory": d.memory_limit, "ephemeral-storage": d.ephemeral_storage_limit},
        }]}})
        self.network_policies = [
            obj(role, "networking.k8s.io/v1", "NetworkPolicy", role, {"spec": policy})
            for role, policy in _network_policies(platform)
        ]
        self.authorization_policy = None
        if platform.mesh_gateway_principal:
            self.authorization_policy = obj("authz", "security.istio.io/v1", "AuthorizationPolicy", "tenant-isolation", {
                "spec": {
                    "action": "ALLOW",
                    "rules": [
                        {"from": [{"source": {"namespaces": [ns, *platform.mesh_source_namespaces]}}]},
                        {"from": [{"source": {"principals": [platform.mesh_gateway_principal]}}]},
                    ],
                },
            }, custom)
        self.local_queues = [
            obj("queue" if queue == LOCAL_QUEUE else f"queue-{queue}", "kueue.x-k8s.io/v1beta2", "LocalQueue", queue,
                {"spec": {"clusterQueue": f"{ns}{suffix}"}}, custom)
            for queue, suffix in platform.local_queues
        ]
        # roleRef is immutable in Kubernetes: a changed role (the built-in `admin` of earlier
        # versions, or admin <-> submitter) replaces the binding, deleting first (same name).
        bound = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *(roles or [])],
                                       replace_on_changes=["roleRef"], delete_before_replace=True)
        self.role_bindings = [
            obj(f"{role}s", "rbac.authorization.k8s.io/v1", "RoleBinding", f"tenant-{role}s", {
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
                "subjects": [{"kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io"} for g in groups],
            }, bound)
            for role, cluster_role, groups in (
                ("admin", SUBMITTER_ROLE if platform.submit_only else ADMIN_ROLE, spec.admin_groups),
                ("viewer", VIEWER_ROLE, spec.viewer_groups),
            )
            if groups
        ]
        self.register_outputs({"namespace": ns})


def _network_policies(platform: TenantPlatform) -> list[tuple[str, dict]]:
    """(name, spec): deny by default, then allow DNS, the namespace itself and the platform."""
    everything: dict = {}
    extra = []
    if platform.allowed_source_namespaces or platform.mesh_namespace:
        policy: dict = {
            "podSelector": everything,
            "policyTypes": (["Ingress"] if platform.allowed_source_namespaces else [])
            + (["Egress"] if platform.mesh_namespace else []),
        }
        if platform.allowed_source_namespaces:
            policy["ingress"] = [{"from": _peers(platform.allowed_source_namespaces)}]
        if platform.mesh_namespace:
            # Sidecars fetch their config and certificates from istiod over mTLS (15012), and
            # need nothing else there: not istiod's plaintext xDS (15010), its HTTP monitoring
            # (8080, where /debug lives when enabled) or webhook ports, nor the gateways.
            policy["egress"] = [{
                "to": [{**_peers([platform.mesh_namespace])[0], "podSelector": {"matchLabels": ISTIOD_LABELS}}],
                "ports": [{"protocol": "TCP", "port": ISTIOD_SECURE_XDS_PORT}],
            }]
        extra.append(("allow-platform", policy))
    return extra + [
        ("default-deny", {"podSelector": everything, "policyTypes": ["Ingress", "Egress"]}),
        ("allow-dns", {
            "podSelector": everything,
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }],
                "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")],
            }],
        }),
        ("allow-same-namespace", {
            "podSelector": everything,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": everything}]}],
            "egress": [{"to": [{"podSelector": everything}]}],
        }),
    ]
