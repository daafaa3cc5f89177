"""Composes the platform from a validated StackConfig: clusters -> add-ons -> tenants.

Only real dependencies are explicit (custom resources after their CRDs, KServe after
cert-manager, Knative after Istio); everything else installs in parallel.
"""

from __future__ import annotations

import asyncio
import gc
import os
from dataclasses import dataclass, field

import pulumi

from components.addons.cert_manager import CertManager
from components.addons.cluster_autoscaler import ClusterAutoscaler
from components.addons.gpu_operator import GpuOperator
from components.addons.kueue import Kueue, TenantQuota
from components.addons.mesh import GATEWAY_PRINCIPAL, Mesh
from components.addons.mesh import NAMESPACE as MESH_NAMESPACE
from components.addons.observability import NAMESPACE as MONITORING_NAMESPACE
from components.addons.observability import Observability
from components.addons.serving import KNATIVE_SERVING_NAMESPACE, KSERVE_NAMESPACE, Serving
from components.bursting import MultiKueue, WorkerAccess, WorkerRef
from components.clusters import CLUSTER_TYPES
from components.clusters.base import Cluster
from components.guardrails import TenantGuardrails
from components.tenancy import Tenant, TenantPlatform

from . import config as stack_config
from .config import ClusterConfig, StackConfig

# The offline plan sets this so errors name the file it planned (e.g. `--config FILE`).
SOURCE_ENV = "AI_PLATFORM_CONFIG_SOURCE"


@dataclass
class ClusterPlatform:
    """One cluster and what runs on it."""

    cluster: Cluster
    addons: dict[str, pulumi.ComponentResource] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    guardrails: TenantGuardrails | None = None


@dataclass
class Platform:
    config: StackConfig
    clusters: dict[str, ClusterPlatform] = field(default_factory=dict)
    grafana_passwords: dict[str, pulumi.Output[str]] = field(default_factory=dict)


def config_source() -> str:
    return os.environ.get(SOURCE_ENV) or f"Pulumi.{pulumi.get_stack()}.yaml"


def load_config() -> StackConfig:
    """The stack's config, or a StackConfigError that Pulumi prints without a traceback."""
    try:
        return stack_config.load()
    except stack_config.ConfigError as exc:
        raise stack_config.StackConfigError(exc, config_source()) from None


def _cluster(cfg: StackConfig, cluster: ClusterConfig, **links) -> Cluster:
    """The cluster's component; `links` (network_from, hosts_manager, authorized_egress) wire
    a MultiKueue manager to its workers and only apply to managed clusters."""
    component, _ = CLUSTER_TYPES[cluster.cloud]
    args = stack_config.cluster_args(cfg, cluster, pulumi.get_project(), pulumi.get_stack())
    links = {k: v for k, v in links.items() if v} if cluster.cloud != "existing" else {}
    return component(cluster.name, args, **links)


ALL_ADDONS = frozenset({"autoscaler", "observability", "gpuOperator", "certManager", "mesh", "kueue", "serving"})


def build_cluster(
    cfg: StackConfig,
    cluster: Cluster,
    only: frozenset[str] = ALL_ADDONS,
    local_queues: tuple[tuple[str, str], ...] = (("default", ""),),
    multikueue_manager: bool = False,
    protect: bool = False,
    submit_only: bool = False,
) -> ClusterPlatform:
    """Add-ons (the enabled ones, within `only`) and tenants on one cluster. A MultiKueue
    manager gets its tenant ClusterQueues from the bursting wiring instead of Kueue; a
    dedicated one (`submit_only`) runs no tenant pods."""
    addons = cfg.addons.model_copy(update={
        field: getattr(cfg.addons, field).model_copy(update={"enabled": False})
        for field, key in (("cluster_autoscaler", "autoscaler"), ("observability", "observability"),
                           ("gpu_operator", "gpuOperator"), ("cert_manager", "certManager"), ("mesh", "mesh"),
                           ("kueue", "kueue"), ("serving", "serving"))
        if key not in only
    })
    on = ClusterPlatform(cluster)
    opts = pulumi.ResourceOptions(provider=cluster.k8s_provider)
    name = cluster.name
    if addons.cluster_autoscaler.enabled and cluster.autoscaler is not None:
        on.addons["autoscaler"] = ClusterAutoscaler(f"{name}-autoscaler", cluster, opts=opts)
    observability = mesh = kueue = None
    if addons.observability.enabled:
        grafana = cfg.grafana_admin_password
        observability = Observability(
            f"{name}-observability", cluster,
            retention=addons.observability.retention,
            storage_size=addons.observability.storage_size,
            grafana_admin_password=pulumi.Output.secret(grafana) if grafana else None,
            replicas=cfg.replicas, protect=protect, mesh=addons.mesh.enabled, opts=opts,
        )
        on.addons["observability"] = observability
    if addons.gpu_operator.enabled:
        on.addons["gpuOperator"] = GpuOperator(
            f"{name}-gpu-operator", cluster, service_monitor=observability is not None,
            depends_on=[observability.release] if observability else None, opts=opts,
        )
    cert_manager = None
    if addons.cert_manager.enabled:
        cert_manager = CertManager(f"{name}-cert-manager", cluster, replicas=cfg.replicas, opts=opts)
        on.addons["certManager"] = cert_manager
    if addons.mesh.enabled:
        mesh = Mesh(f"{name}-mesh", cluster, replicas=cfg.replicas, opts=opts)
        on.addons["mesh"] = mesh
    if addons.kueue.enabled:
        queued = () if multikueue_manager and local_queues == (("default", ""),) else tenant_quotas(cfg)
        kueue = Kueue(f"{name}-kueue", cluster, queued, replicas=cfg.replicas,
                      metrics=observability is not None, multikueue_manager=multikueue_manager, opts=opts)
        on.addons["kueue"] = kueue

    knative = addons.serving.enabled and addons.serving.mode == "knative"
    sources = tuple(n for n, on_ in (
        (MESH_NAMESPACE, mesh is not None), (KNATIVE_SERVING_NAMESPACE, knative),
        (MONITORING_NAMESPACE, observability is not None)) if on_)
    mesh_sources = tuple(n for n, on_ in ((MESH_NAMESPACE, mesh is not None),
                                          (KNATIVE_SERVING_NAMESPACE, knative and mesh is not None)) if on_)
    tenant_platform = TenantPlatform(
        mesh_gateway_principal=GATEWAY_PRINCIPAL if mesh else None,
        mesh_namespace=MESH_NAMESPACE if mesh else None,
        allowed_source_namespaces=sources,
        mesh_source_namespaces=mesh_sources,
        local_queues=local_queues if kueue is not None else (),
        submit_only=submit_only,
    )
    crds = [r for r in ((mesh.base if mesh else None), (kueue.release if kueue else None)) if r is not None]
    roles: list[pulumi.Resource] = []
    if cfg.tenants:
        guardrails = TenantGuardrails(
            f"{name}-tenant-guardrails",
            service_controllers=service_controllers(addons.serving.enabled, knative),
            system_taint_keys=tuple(t.key for t in cluster.system_taints),
            opts=opts,
        )
        on.guardrails = guardrails
        roles = guardrails.roles
    for t in cfg.tenants:
        on.tenants[t.name] = Tenant(
            f"{name}-{t.name}", t, cluster.kubernetes_version, tenant_platform, crds=crds, roles=roles,
            opts=pulumi.ResourceOptions(provider=cluster.k8s_provider),
        )
    if addons.serving.enabled:
        assert cert_manager is not None  # config validation guarantees it
        on.addons["serving"] = Serving(
            f"{name}-serving", cluster, addons.serving.mode, cert_manager.release,
            mesh=[mesh.istiod, mesh.gateway] if mesh and knative else [],
            ingress=mesh is not None,
            example_tenants=[tn.namespace for tn in on.tenants.values()],
            example_namespaces=tuple(t.name for t in cfg.tenants) if addons.serving.example_inference_service else (),
            opts=opts,
        )
    return on


def service_controllers(serving: bool, knative: bool) -> tuple[str, ...]:
    """Platform controllers that create ExternalName Services in tenant namespaces: Knative's
    route placeholders (knative serving pkg/reconciler/route/resources/service.go) and KServe's
    InferenceService hosts; both point them at the mesh's own gateways."""
    return tuple(user for user, on in (
        (f"system:serviceaccount:{KNATIVE_SERVING_NAMESPACE}:controller", knative),
        (f"system:serviceaccount:{KSERVE_NAMESPACE}:kserve-controller-manager", serving)) if on)


def tenant_quotas(cfg: StackConfig) -> tuple[TenantQuota, ...]:
    return tuple(TenantQuota(t.name, t.gpus, t.borrow_gpus, t.cpu, t.memory) for t in cfg.tenants)


def _clusters(cfg: StackConfig) -> tuple[dict[str, Cluster], Cluster | None]:
    """Every cluster, and the dedicated MultiKueue manager if any. The manager reaches its
    workers by construction: it runs in the primary's network (whose API server lets it in)
    and every burst cluster's public endpoint allows the manager's egress addresses."""
    dedicated = cfg.bursting.enabled and cfg.bursting.manager == "dedicated"
    primary = _cluster(cfg, cfg.primary, hosts_manager=dedicated)
    manager = None
    if dedicated:
        manager_cfg = cfg.manager(CLUSTER_TYPES[cfg.primary.cloud][0].default_system_machine)
        manager = _cluster(cfg, manager_cfg, network_from=primary)
    dispatcher = manager or primary
    clusters = {cfg.primary.name: primary}
    for burst in cfg.bursts:
        clusters[burst.name] = _cluster(cfg, burst, authorized_egress=dispatcher.egress_cidrs if cfg.bursting.enabled
                                        else None)
    return {c.name: clusters[c.name] for c in cfg.clusters}, manager


def build(cfg: StackConfig) -> Platform:
    platform = Platform(cfg)
    bursting = cfg.bursting.enabled
    primary_manager = bursting and cfg.bursting.manager == "primary"
    clusters, manager = _clusters(cfg)
    for cluster_cfg in cfg.clusters:
        cluster = clusters[cluster_cfg.name]
        queues: tuple[tuple[str, str], ...] = (("default", ""),)
        if primary_manager:
            # Tenants keep `default` and get `burst`: on the primary it dispatches, on a burst
            # cluster it is the local queue MultiKueue's copies land in.
            queues = (("default", ""), ("burst", BURST_SUFFIX if cluster_cfg.role == "primary" else ""))
        platform.clusters[cluster.name] = build_cluster(
            cfg, cluster, local_queues=queues, multikueue_manager=primary_manager and cluster_cfg.role == "primary",
            protect=cfg.protect(cluster_cfg),
        )
    if bursting:
        _burst(cfg, platform, manager)
    for name, on in platform.clusters.items():
        observability = on.addons.get("observability")
        if observability is not None:
            platform.grafana_passwords[name] = observability.grafana_admin_password
    return platform


BURST_SUFFIX = "-burst"


def _burst(cfg: StackConfig, platform: Platform, dedicated: Cluster | None) -> None:
    """MultiKueue: a dedicated manager (workers: primary, then burst) or the primary as
    manager (workers: the burst clusters)."""
    primary = platform.clusters[cfg.primary.name]
    bursts = [platform.clusters[c.name] for c in cfg.bursts]
    if dedicated is not None:
        manager = build_cluster(cfg, dedicated, only=frozenset({"kueue"}), multikueue_manager=True, submit_only=True)
        platform.clusters[manager.cluster.name] = manager
        workers, suffix = [primary, *bursts], ""
    else:
        manager, workers, suffix = primary, bursts, BURST_SUFFIX
    refs = []
    for worker in workers:
        access = WorkerAccess(
            f"{worker.cluster.name}-multikueue-access", worker.cluster,
            namespaces=tuple(t.name for t in cfg.tenants),
            depends_on=[worker.addons["kueue"].release, *(t.namespace for t in worker.tenants.values())],
            token_generation=cfg.bursting.worker_token_generation,
            opts=pulumi.ResourceOptions(provider=worker.cluster.k8s_provider),
        )
        refs.append(WorkerRef(worker.cluster.name, access.kubeconfig))
    manager.addons["multikueue"] = MultiKueue(
        f"{manager.cluster.name}-multikueue", manager.cluster, refs, tenant_quotas(cfg),
        manager.addons["kueue"].release, queue_suffix=suffix,
        opts=pulumi.ResourceOptions(provider=manager.cluster.k8s_provider),
    )


def export(platform: Platform) -> None:
    pulumi.export("environment", platform.config.environment)
    pulumi.export(
        "clusters",
        {
            name: {
                "cloud": on.cluster.cloud,
                "kubernetesVersion": on.cluster.kubernetes_version,
                "endpoint": on.cluster.endpoint,
                "gpuPools": [p.name for p in on.cluster.gpu_pools],
                "addons": sorted(on.addons),
            }
            for name, on in platform.clusters.items()
        },
    )
    pulumi.export("kubeconfigs", pulumi.Output.secret({n: on.cluster.kubeconfig for n, on in platform.clusters.items()}))
    if platform.grafana_passwords:
        pulumi.export("grafanaAdminPasswords", pulumi.Output.secret(platform.grafana_passwords))
    pulumi.export("tenants", sorted(t.name for t in platform.config.tenants))


def start_registrations() -> None:
    """Hand the event loop to the registrations before the SDK's shutdown wait.

    A synchronous program returns before any registration RPC has started, so the SDK's
    `wait_for_rpcs` finds no RPCs and goes straight to `asyncio.wait` on every pending
    Output, FIRST_COMPLETED, re-arming all of them each time one resolves: O(pending Outputs)
    per wake-up, and a cluster's dependency chain wakes it dozens of times. With the RPCs in
    flight it awaits them one by one instead. At 500 tenants that wait was most of the run.
    It also freezes the built graph for the garbage collector.

    It uses `pulumi.run`, which a program may call once: a program that embeds `build()` and
    has its own async entrypoint should `await asyncio.sleep(0)` there instead."""

    async def started() -> None:
        await asyncio.sleep(0)

    # The resource graph lives until the program ends, so full collections that walk it
    # again and again are wasted (about a fifth of the run at 200 tenants).
    gc.freeze()
    pulumi.run(started)


def main() -> Platform:
    platform = build(load_config())
    export(platform)
    start_registrations()
    return platform
