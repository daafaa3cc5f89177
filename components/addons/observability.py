"""Observability: kube-prometheus-stack with GPU dashboards and GPU alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..clusters.base import Cluster
from . import versions
from .common import critical_priority_quota, namespace, release, system_placement

NAMESPACE = "monitoring"
NODE_AGENT_PRIORITY = "system-node-critical"
GRAFANA_SECRET = "grafana-admin"
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARDS = Path(__file__).parent / "dashboards"

# GPU health and waste, on the DCGM exporter's metrics.
GPU_RULES = [
    {
        "name": "gpu-health",
        "rules": [
            {
                "alert": "GpuXidError",
                # A gauge holding the last XID seen: alert when it changes to a new error, not forever after.
                "expr": "max by (Hostname, gpu) (changes(DCGM_FI_DEV_XID_ERRORS[10m]) > 0 "
                        "and DCGM_FI_DEV_XID_ERRORS != 0)",
                "for": "0m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported a new XID error",
                    "description": "XID errors signal driver or hardware faults; drain the node if they repeat.",
                },
            },
            {
                "alert": "GpuTemperatureHigh",
                "expr": "max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP) > 85",
                "for": "5m",
                "labels": {"severity": "warning"},
                "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} at {{ $value }}°C"},
            },
            {
                "alert": "GpuMemoryNearlyFull",
                "expr": "max by (Hostname, gpu, namespace, pod) (DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) > 0.95",
                "for": "10m",
                "labels": {"severity": "warning"},
                "annotations": {"summary": "GPU memory of {{ $labels.namespace }}/{{ $labels.pod }} is over 95% full"},
            },
        ],
    },
    {
        "name": "gpu-waste",
        "rules": [
            {
                "alert": "GpuAllocatedButIdle",
                "expr": 'avg by (namespace, pod) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{pod!=""}[1h])) < 5',
                "for": "1h",
                "labels": {"severity": "info"},
                "annotations": {
                    "summary": "{{ $labels.namespace }}/{{ $labels.pod }} holds GPUs that were idle for an hour",
                    "description": "Allocated GPUs under 5% utilization: release them to the queue.",
                },
            }
        ],
    },
]


def mesh_pod_monitor() -> dict:
    """Scrape every injected pod's merged metrics (the app's own plus Envoy's) on the sidecar
    agent's port 15020 (`meshConfig.enablePrometheusMerge`). That port is plain HTTP and not
    intercepted, so it works under STRICT mTLS without giving Prometheus a sidecar (Istio's
    "Prometheus: Option 1: Metrics merging"). Pods opt out with `istio-prometheus-ignore`."""
    return {
        "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore", "operator": "DoesNotExist"},
                                          {"key": "security.istio.io/tlsMode", "operator": "Exists"}]},
        "namespaceSelector": {"any": True},
        "jobLabel": "envoy-stats",
        "podMetricsEndpoints": [{
            "path": "/stats/prometheus",
            "interval": "30s",
            "relabelings": [
                {"action": "keep", "sourceLabels": ["__meta_kubernetes_pod_container_name"], "regex": "istio-proxy"},
                # Istio's own PodMonitor (samples/addons/extras/prometheus-operator.yaml): the port
                # the injector annotates (15020 with merging) on the pod's IPv4 address.
                {"action": "keep", "sourceLabels": ["__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape"]},
                {"action": "replace", "regex": "(\\d+);((([0-9]+?)(\\.|$)){4})", "replacement": "$2:$1",
                 "sourceLabels": ["__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"],
                 "targetLabel": "__address__"},
            ],
        }],
    }


class Observability(pulumi.ComponentResource):
    """kube-prometheus-stack with retention and persistent storage, a Grafana admin
    password kept in a Secret (given, or generated), GPU dashboards and alerts."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        retention: str = "15d",
        storage_size: str = "50Gi",
        grafana_admin_password: pulumi.Input[str] | None = None,
        replicas: int = 1,
        protect: bool = False,
        mesh: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`protect`: keep the release (and so its metrics volume) from being deleted by accident.
        `mesh`: Istio is on; scrape the sidecars' merged metrics (works under STRICT mTLS)."""
        super().__init__("ai-platform:addons:Observability", name, None, opts)
        # node-exporter needs the host's network and PID namespace.
        ns = namespace(f"{name}-namespace", NAMESPACE, "privileged", self)
        child = pulumi.ResourceOptions(parent=self)
        if grafana_admin_password is None:
            self.generated_password = random.RandomPassword(
                f"{name}-grafana-password", length=32, special=False, opts=child
            )
            grafana_admin_password = self.generated_password.result
        self.grafana_admin_password = pulumi.Output.secret(grafana_admin_password)
        self.grafana_secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_SECRET, namespace=ns.metadata.name),
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": self.grafana_admin_password},
            opts=child,
        )
        placement = system_placement(cluster)
        volume = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage_size}}}
        if cluster.storage_class:
            volume["storageClassName"] = cluster.storage_class
        values = {
            "prometheus": {
                "prometheusSpec": {
                    "retention": retention,
                    "replicas": replicas,
                    "storageSpec": {"volumeClaimTemplate": {"spec": volume}},
                    # Pick up every ServiceMonitor/PodMonitor/rule, not only this release's.
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "podMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    **placement,
                }
            },
            "alertmanager": {"alertmanagerSpec": {"replicas": replicas, **placement}},
            "prometheusOperator": {**placement, "admissionWebhooks": {"patch": placement}},
            "kube-state-metrics": placement,
            # A node agent on nodes full of tenant pods (which run at priority 0, admission sees to
            # that) must still get its place: it preempts them.
            "prometheus-node-exporter": {"priorityClassName": NODE_AGENT_PRIORITY},
            "grafana": {
                **placement,
                "admin": {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
                # Dashboards only from the platform's namespace: a tenant's labelled ConfigMap must
                # not replace "GPU usage per tenant", and Grafana gets a Role here instead of
                # cluster-wide read on every Secret (MultiKueue tokens included).
                "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                                           "searchNamespace": NAMESPACE}},
                "rbac": {"namespaced": True},
            },
        }
        self.priority_quota = None
        if cluster.critical_pods_need_quota:
            self.priority_quota = critical_priority_quota(
                f"{name}-priority-quota", "node-agents-quota", ns.metadata.name, self, pods=1000)
        self.release = release(
            f"{name}-release", versions.KUBE_PROMETHEUS_STACK, ns.metadata.name, values, self, cluster,
            release_name="kube-prometheus-stack", protect=protect,
            # Prometheus and Alertmanager claim volumes: the storage driver must be there.
            depends_on=[self.grafana_secret, *cluster.storage_ready,
                        *([self.priority_quota] if self.priority_quota else [])],
        )
        self.dashboards = [
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{path.stem}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"dashboard-{path.stem}", namespace=ns.metadata.name, labels={DASHBOARD_LABEL: "1"}
                ),
                data={path.name: json.dumps(json.loads(path.read_text()))},
                opts=child,
            )
            for path in sorted(DASHBOARDS.glob("*.json"))
        ]
        # Rules are custom resources: they need the chart's CRDs first.
        self.gpu_rules = k8s.apiextensions.CustomResource(
            f"{name}-gpu-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ai-platform-gpu", namespace=ns.metadata.name),
            spec={"groups": GPU_RULES},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.mesh_monitor = None
        if mesh:
            self.mesh_monitor = k8s.apiextensions.CustomResource(
                f"{name}-mesh-metrics",
                api_version="monitoring.coreos.com/v1",
                kind="PodMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="istio-sidecars", namespace=ns.metadata.name),
                spec=mesh_pod_monitor(),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
        self.register_outputs({"status": self.release.status})
