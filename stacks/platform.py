"""Composes the platform from a validated StackConfig: clusters -> add-ons -> tenants."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pulumi

from components.addons.cluster_autoscaler import ClusterAutoscaler
from components.clusters import CLUSTER_TYPES
from components.clusters.base import Cluster
from components.tenancy import Tenant

from . import config as stack_config
from .config import ClusterConfig, StackConfig

# The offline plan sets this so errors name the file it planned (e.g. `--config FILE`).
SOURCE_ENV = "AI_PLATFORM_CONFIG_SOURCE"


@dataclass
class Platform:
    config: StackConfig
    clusters: dict[str, Cluster] = field(default_factory=dict)
    tenants: dict[str, dict[str, Tenant]] = field(default_factory=dict)


def config_source() -> str:
    return os.environ.get(SOURCE_ENV) or f"Pulumi.{pulumi.get_stack()}.yaml"


def load_config() -> StackConfig:
    """The stack's config, or a StackConfigError that Pulumi prints without a traceback."""
    try:
        return stack_config.load()
    except stack_config.ConfigError as exc:
        raise stack_config.StackConfigError(exc, config_source()) from None


def _cluster(cfg: StackConfig, cluster: ClusterConfig) -> Cluster:
    component, _ = CLUSTER_TYPES[cluster.cloud]
    args = stack_config.cluster_args(cfg, cluster, pulumi.get_project(), pulumi.get_stack())
    return component(cluster.name, args)


def build(cfg: StackConfig) -> Platform:
    platform = Platform(cfg)
    for cluster_cfg in cfg.clusters:
        cluster = _cluster(cfg, cluster_cfg)
        platform.clusters[cluster.name] = cluster
        on_cluster = pulumi.ResourceOptions(provider=cluster.k8s_provider)
        if cfg.addons.cluster_autoscaler.enabled and cluster.autoscaler is not None:
            ClusterAutoscaler(f"{cluster.name}-autoscaler", cluster, opts=on_cluster)
        platform.tenants[cluster.name] = {
            t.name: Tenant(f"{cluster.name}-{t.name}", t, cluster.kubernetes_version, opts=on_cluster)
            for t in cfg.tenants
        }
    return platform


def export(platform: Platform) -> None:
    pulumi.export("environment", platform.config.environment)
    pulumi.export(
        "clusters",
        {
            name: {
                "cloud": c.cloud,
                "kubernetesVersion": c.kubernetes_version,
                "endpoint": c.endpoint,
                "gpuPools": [p.name for p in c.gpu_pools],
            }
            for name, c in platform.clusters.items()
        },
    )
    pulumi.export("kubeconfigs", pulumi.Output.secret({n: c.kubeconfig for n, c in platform.clusters.items()}))
    pulumi.export("tenants", sorted(t.name for t in platform.config.tenants))


def main() -> Platform:
    platform = build(load_config())
    export(platform)
    return platform
