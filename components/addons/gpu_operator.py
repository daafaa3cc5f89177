"""GpuOperator: the NVIDIA GPU Operator, configured by what the cluster says about its
drivers and by each GPU pool's sharing."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ..clusters.base import GPU_RESOURCE, Cluster
from . import versions
from .common import critical_priority_quota, gpu_tolerations, merge, namespace, release, system_placement

NAMESPACE = "gpu-operator"
TIME_SLICING_CONFIG = "device-plugin-config"
DEFAULT_DEVICE_PLUGIN_CONFIG = "default"


def device_plugin_configs(cluster: Cluster) -> dict[str, str]:
    """One device-plugin config per time-sliced pool (selected on its nodes by the
    `nvidia.com/device-plugin.config=<pool>` label), plus a plain default."""
    configs = {DEFAULT_DEVICE_PLUGIN_CONFIG: yaml.safe_dump({"version": "v1"})}
    for pool in cluster.gpu_pools:
        if pool.sharing.mode == "time-slicing":
            configs[pool.name] = yaml.safe_dump(
                {
                    "version": "v1",
                    "sharing": {
                        "timeSlicing": {"resources": [{"name": GPU_RESOURCE, "replicas": pool.sharing.replicas}]}
                    },
                },
                sort_keys=False,
            )
    return configs


class GpuOperator(pulumi.ComponentResource):
    """The GPU Operator: driver/toolkit mode from `cluster.gpu_operator_values`, device
    plugin and DCGM exporter on every tainted GPU node, time-slicing and MIG per pool."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        service_monitor: bool,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`depends_on`: what installs the ServiceMonitor CRD, when `service_monitor`."""
        super().__init__("ai-platform:addons:GpuOperator", name, None, opts)
        # Its daemonsets need host access (driver, toolkit, device plugin).
        ns = namespace(f"{name}-namespace", NAMESPACE, "privileged", self)
        configs = device_plugin_configs(cluster)
        self.device_plugin_config = k8s.core.v1.ConfigMap(
            f"{name}-device-plugin-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TIME_SLICING_CONFIG, namespace=ns.metadata.name),
            data=configs,
            opts=pulumi.ResourceOptions(parent=self),
        )
        before = [self.device_plugin_config]
        if cluster.critical_pods_need_quota:
            # The operator, its daemonsets and NFD run at system-node-critical.
            self.priority_quota = critical_priority_quota(
                f"{name}-priority-quota", "gpu-operator-quota", ns.metadata.name, self)
            before.append(self.priority_quota)
        mig = any(p.sharing.mode == "mig" for p in cluster.gpu_pools)
        placement = system_placement(cluster)
        on_gpus = gpu_tolerations(cluster) or [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
        values = merge(
            {
                "operator": placement,
                # Every GPU node, whatever the cloud's taint value or spot taint.
                "daemonsets": {"tolerations": on_gpus},
                # NFD labels the GPU nodes the operator then targets: its worker must run on all of
                # them (spot pools included); master and gc are controllers on the system pool.
                "node-feature-discovery": {
                    "master": placement,
                    "gc": placement,
                    "worker": {"tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": "",
                         "effect": "NoSchedule"},
                        *on_gpus,
                    ]},
                },
                "devicePlugin": {
                    "config": {"create": False, "name": TIME_SLICING_CONFIG, "default": DEFAULT_DEVICE_PLUGIN_CONFIG}
                },
                "mig": {"strategy": "single"},
                # Pools select their layout with the nvidia.com/mig.config label.
                "migManager": {"enabled": mig, "config": {"default": "all-disabled"}},
                # honorLabels keeps the exporter's `namespace`/`pod` (the GPU's workload) instead of
                # renaming them `exported_*`: per-tenant dashboards and alerts group by them.
                "dcgmExporter": {"enabled": True,
                                 "serviceMonitor": {"enabled": service_monitor, "honorLabels": True}},
            },
            cluster.gpu_operator_values,
        )
        if values.get("toolkit", {}).get("enabled", True):
            # NVIDIA's hardening: the runtime ignores NVIDIA_VISIBLE_DEVICES in unprivileged
            # containers (CUDA images set it to `all`), so a pod sees only the GPUs the device plugin
            # gives it, by CDI (the chart's default, cdi.enabled). Where the node image brings its own
            # toolkit (EKS), the operator cannot set this.
            env = [*values.get("toolkit", {}).get("env", []),
                   {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"}]
            values = merge(values, {"toolkit": {"env": env}})
        self.release = release(
            f"{name}-release", versions.GPU_OPERATOR, ns.metadata.name, values, self, cluster,
            depends_on=[*before, *(depends_on or [])],
        )
        self.register_outputs({"status": self.release.status})
