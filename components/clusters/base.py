"""What every cluster component looks like, and the node pool specs they share.

Add-ons and tenants only ever see a `Cluster`; they never branch on the cloud.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator, model_validator

from ..addons.versions import SUPPORTED_KUBERNETES_VERSIONS
from ..spec import DnsLabel, Spec
from . import catalog

GPU_RESOURCE = "nvidia.com/gpu"
# Priority classes whose pods preempt almost anything: platform only.
CRITICAL_PRIORITY_CLASSES = ("system-node-critical", "system-cluster-critical")
LABEL_POOL = "ai-platform.io/pool"
LABEL_GPU_MODEL = "ai-platform.io/gpu-model"
LABEL_CAPACITY = "ai-platform.io/capacity"
SYSTEM_POOL_NAME = "system"

Capacity = Literal["on-demand", "spot"]


class NodePoolSpec(Spec):
    """A node pool's machine type and autoscaling bounds."""

    machine_type: str
    """Instance / machine type, e.g. `m6i.xlarge`."""
    min: int = Field(default=2, ge=0, le=1000)
    """Fewest nodes the autoscaler keeps. @default 2"""
    max: int = Field(default=4, ge=1, le=1000)
    """Most nodes the autoscaler may add. @default 4"""
    disk_size_gb: int = Field(default=100, ge=20, le=16384)
    """Root volume size in GiB (always encrypted). @default 100"""

    @model_validator(mode="after")
    def _bounds(self) -> NodePoolSpec:
        if self.min > self.max:
            raise ValueError(f"max: must be >= min ({self.min}), got {self.max}")
        return self


class GpuSharing(Spec):
    """How pods share one pool's GPUs."""

    mode: Literal["none", "time-slicing", "mig"] = "none"
    """none, time-slicing (several pods per GPU) or mig (hardware partitions). Nodes then advertise
    one `nvidia.com/gpu` per slice or MIG instance, and quotas count those units. @default none"""
    replicas: int | None = Field(default=None, ge=2, le=48)
    """time-slicing: pods per GPU. @default none"""
    profile: str | None = Field(default=None, pattern=r"^all-[1-7]g\.[0-9]+gb$")
    """mig: one MIG profile for every GPU of the node, e.g. `all-1g.10gb`. @default none"""

    @model_validator(mode="after")
    def _fields_for_mode(self) -> GpuSharing:
        if self.mode == "time-slicing" and self.replicas is None:
            raise ValueError("replicas: required for time-slicing")
        if self.mode == "mig" and self.profile is None:
            raise ValueError("profile: required for mig (e.g. all-1g.10gb)")
        if self.mode != "time-slicing" and self.replicas is not None:
            raise ValueError("replicas: only applies to time-slicing")
        if self.mode != "mig" and self.profile is not None:
            raise ValueError("profile: only applies to mig")
        return self


class GpuPoolSpec(NodePoolSpec):
    """A GPU node pool as the user describes it."""

    name: DnsLabel
    """Pool name, unique within the cluster; becomes the `ai-platform.io/pool` node label."""
    machine_type: str | None = None
    """Instance / machine type, e.g. `p4d.24xlarge`, `a2-highgpu-1g`, `Standard_NC24ads_A100_v4`. Required except on existing clusters."""
    min: int = Field(default=0, ge=0, le=1000)
    """Fewest nodes; 0 lets the pool scale to zero. @default 0"""
    max: int = Field(default=2, ge=1, le=1000)
    """Most nodes. @default 2"""
    gpus: int | None = Field(default=None, gt=0, le=16)
    """GPUs per node. @default taken from the machine type's catalog entry"""
    gpu_model: str | None = None
    """GPU model label such as `a100` or `l4`. @default taken from the machine type's catalog entry"""
    accelerator: str | None = None
    """gcp: guest accelerator type, e.g. `nvidia-l4`. @default taken from the machine type's catalog entry"""
    capacity: Capacity = "on-demand"
    """`on-demand` or `spot`. @default on-demand"""
    sharing: GpuSharing = GpuSharing()
    """GPU sharing. gcp: time-slicing and MIG natively; azure: MIG natively. @default none"""
    disk_size_gb: int = Field(default=200, ge=20, le=16384)
    """Root volume size in GiB; container images for ML are large. @default 200"""


class CpuPoolSpec(NodePoolSpec):
    """A general-purpose (CPU) node pool for tenant workloads, untainted and autoscaled."""

    name: DnsLabel
    """Pool name, unique within the cluster; becomes the `ai-platform.io/pool` node label."""
    min: int = Field(default=0, ge=0, le=1000)
    """Fewest nodes; 0 lets the pool scale to zero. @default 0"""
    max: int = Field(default=4, ge=1, le=1000)
    """Most nodes. @default 4"""
    capacity: Capacity = "on-demand"
    """`on-demand` or `spot`. @default on-demand"""


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str = "NoSchedule"

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


@dataclass(frozen=True)
class GpuPool:
    """A GPU pool after its machine type was checked against the catalog."""

    name: str
    machine_type: str | None
    gpus: int
    gpu_model: str
    min: int
    max: int
    capacity: str
    disk_size_gb: int
    taint: Taint
    sharing: GpuSharing = GpuSharing()
    accelerator: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    extra_taints: tuple[Taint, ...] = ()
    """Taints the cloud adds itself (AKS spot pools); pods for this pool must tolerate them too."""

    @property
    def taints(self) -> tuple[Taint, ...]:
        return (self.taint, *self.extra_taints)

    @property
    def devices_per_gpu(self) -> int:
        """`nvidia.com/gpu` units one physical GPU advertises: time-slicing replicas, MIG
        instances of the pool's profile, else 1. Tenant GPU quotas are in these units."""
        if self.sharing.mode == "time-slicing":
            return self.sharing.replicas or 1
        if self.sharing.mode == "mig":
            profile = (self.sharing.profile or "").removeprefix("all-")
            return catalog.MIG_PROFILES.get(self.gpu_model, {}).get(profile, 1)
        return 1

    @property
    def devices(self) -> int:
        """`nvidia.com/gpu` units one node advertises."""
        return self.gpus * self.devices_per_gpu

    @property
    def capacity_devices(self) -> int:
        """`nvidia.com/gpu` units of the pool at its maximum size."""
        return self.max * self.devices


@dataclass(frozen=True)
class CpuPool:
    """A CPU pool as the cloud creates it."""

    name: str
    machine_type: str
    min: int
    max: int
    capacity: str
    disk_size_gb: int
    labels: dict[str, str]
    taints: tuple[Taint, ...] = ()


class GpuPoolError(ValueError):
    """A GPU pool that cannot work; `key` names the offending field."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# The system pool's taint on every managed cloud (AKS's guidance for its system pools, and the
# key CoreDNS/kube-dns tolerate; a managed component that does not goes to the CPU pools). Platform
# controllers tolerate it; tenants may not (components/guardrails.py), so the system pool
# runs only the platform and tenants' CPU work goes to the CPU pools.
SYSTEM_TAINT = Taint("CriticalAddonsOnly", "true")

# The GPU taint value each cloud's tooling uses (EKS managed node groups use "true").
GPU_TAINT_VALUES = {"aws": "true", "gcp": "present", "azure": "present", "existing": "present"}
# Sharing the cloud provides itself when its own device plugin runs (gpu_driver "cloud").
NATIVE_SHARING = {"gcp": {"time-slicing", "mig"}, "azure": {"mig"}}
# The cluster autoscaler's GPU label on AWS: with it, a booting GPU node whose device plugin
# has not yet advertised its GPUs counts as "not ready yet", not as an empty node to scale
# past (cluster-autoscaler cloudprovider/aws, GPULabel).
AWS_ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
# Taints clouds put on nodes themselves; pods for such pools must tolerate them.
AZURE_SPOT_TAINT = Taint("kubernetes.azure.com/scalesetpriority", "spot")
# Node labels the GPU Operator reads to pick a pool's device-plugin config and MIG layout.
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"


def _machine(cloud: str, spec: GpuPoolSpec) -> tuple[str, int, str | None]:
    """(model, gpus, accelerator) for the pool's machine type, checked against the catalog."""
    name = spec.name
    if cloud == "existing":
        if spec.gpus is None or spec.gpu_model is None:
            raise GpuPoolError("gpus", f"pool {name!r}: existing clusters need gpus and gpuModel described")
        return spec.gpu_model, spec.gpus, None
    if not spec.machine_type:
        raise GpuPoolError("machineType", f"pool {name!r}: required on {cloud} clusters")
    if cloud == "gcp" and spec.machine_type.startswith("n1-"):
        model = catalog.GCP_N1_ACCELERATORS.get(spec.accelerator or "")
        if model is None or spec.gpus is None:
            raise GpuPoolError(
                "accelerator",
                f"pool {name!r}: {spec.machine_type} takes attachable GPUs; set accelerator to one of "
                f"{', '.join(catalog.GCP_N1_ACCELERATORS)} and gpus",
            )
        known = catalog.GpuMachine(model, spec.gpus, spec.accelerator)
    else:
        known = catalog.lookup(cloud, spec.machine_type)
    if known is None:
        if spec.gpus is None or spec.gpu_model is None or (cloud == "gcp" and spec.accelerator is None):
            needs = "gpus, gpuModel and accelerator" if cloud == "gcp" else "gpus and gpuModel"
            raise GpuPoolError(
                "machineType",
                f"pool {name!r}: {spec.machine_type!r} is not a GPU machine type known for {cloud}; "
                f"use a known type or set {needs}",
            )
        return spec.gpu_model, spec.gpus, spec.accelerator
    for key, given, actual in (
        ("gpuModel", spec.gpu_model, known.model),
        ("gpus", spec.gpus, known.gpus),
        ("accelerator", spec.accelerator, known.accelerator),
    ):
        if given is not None and given != actual:
            what = {"gpuModel": "carries", "gpus": "has", "accelerator": "needs accelerator"}[key]
            unit = " GPU(s)" if key == "gpus" else ""
            raise GpuPoolError(key, f"pool {name!r}: {spec.machine_type} {what} {actual}{unit}, not {given}")
    return known.model, known.gpus, known.accelerator


def resolve_gpu_pool(cloud: str, spec: GpuPoolSpec, gpu_driver: str = "cloud") -> GpuPool:
    """Fill in the GPU model, count and accelerator from the catalog, rejecting
    contradictions and sharing modes the pool cannot do. With the GPU Operator, sharing
    is the operator's on every cloud, selected per pool by node label."""
    model, gpus, accelerator = _machine(cloud, spec)
    mode = spec.sharing.mode
    operator = gpu_driver == "gpu-operator"
    if mode != "none" and not operator and mode not in NATIVE_SHARING.get(cloud, set()):
        raise GpuPoolError(
            "sharing", f"pool {spec.name!r}: {mode} on {cloud} needs the GPU Operator (addons.gpuOperator)"
        )
    if mode == "mig" and model not in catalog.MIG_CAPABLE:
        raise GpuPoolError("sharing", f"pool {spec.name!r}: {model} GPUs do not support MIG")
    if mode == "mig":
        profiles = catalog.MIG_PROFILES[model]
        if (spec.sharing.profile or "").removeprefix("all-") not in profiles:
            raise GpuPoolError("sharing", f"pool {spec.name!r}: {model} GPUs have no MIG profile "
                               f"{spec.sharing.profile!r}; use one of {', '.join('all-' + p for p in profiles)}")
    labels = {LABEL_POOL: spec.name, LABEL_GPU_MODEL: model, LABEL_CAPACITY: spec.capacity}
    if cloud == "aws":
        labels[AWS_ACCELERATOR_LABEL] = f"nvidia-{model}"
    if operator and mode == "time-slicing":
        labels[DEVICE_PLUGIN_CONFIG_LABEL] = spec.name
    if operator and mode == "mig":
        labels[MIG_CONFIG_LABEL] = spec.sharing.profile
    return GpuPool(
        name=spec.name,
        machine_type=spec.machine_type,
        gpus=gpus,
        gpu_model=model,
        min=spec.min,
        max=spec.max,
        capacity=spec.capacity,
        disk_size_gb=spec.disk_size_gb,
        taint=Taint(GPU_RESOURCE, GPU_TAINT_VALUES[cloud]),
        sharing=spec.sharing,
        accelerator=accelerator,
        labels=labels,
        extra_taints=(AZURE_SPOT_TAINT,) if cloud == "azure" and spec.capacity == "spot" else (),
    )


def resolve_cpu_pool(cloud: str, spec: CpuPoolSpec) -> CpuPool:
    return CpuPool(
        name=spec.name, machine_type=spec.machine_type, min=spec.min, max=spec.max, capacity=spec.capacity,
        disk_size_gb=spec.disk_size_gb, labels={LABEL_POOL: spec.name, LABEL_CAPACITY: spec.capacity},
        taints=(AZURE_SPOT_TAINT,) if cloud == "azure" and spec.capacity == "spot" else (),
    )


def resolve_gpu_pools(cloud: str, specs: tuple[GpuPoolSpec, ...], gpu_driver: str = "cloud") -> tuple[GpuPool, ...]:
    """Resolve every pool; names must be unique and not the system pool's."""
    pools = tuple(resolve_gpu_pool(cloud, p, gpu_driver) for p in specs)
    names = [p.name for p in pools]
    if len(set(names)) != len(names) or SYSTEM_POOL_NAME in names:
        raise ValueError(f"GPU pool names must be unique and not {SYSTEM_POOL_NAME!r}: {names}")
    return pools


class EndpointSpec(Spec):
    """Who can reach the Kubernetes API server."""

    public: bool = False
    """Expose the API endpoint publicly (only to `authorizedNetworks`). @default false"""
    authorized_networks: tuple[str, ...] = ()
    """CIDRs allowed to reach a public endpoint; required when `public` is true. @default []"""

    @field_validator("authorized_networks")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR block ({exc})") from None
            if net.prefixlen == 0:
                raise ValueError(f"{cidr!r} opens the API server to the whole internet")
        return value

    @model_validator(mode="after")
    def _public_needs_networks(self) -> EndpointSpec:
        if self.public and not self.authorized_networks:
            raise ValueError("authorizedNetworks: needs at least one CIDR when public is true")
        return self


class NetworkSpec(Spec):
    """The cluster's VPC / VNet."""

    cidr: str = "10.0.0.0/16"
    """VPC CIDR, /16 to /20. @default 10.0.0.0/16"""
    zones: int | None = Field(default=None, ge=2, le=6)
    """Availability zones to spread over. @default 3 in prod, 2 otherwise"""
    nat_gateways: Literal["single", "per-zone"] | None = None
    """One shared NAT gateway, or one per zone for zone-failure tolerance. @default per-zone in prod, single otherwise"""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR block ({exc})") from None
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"{value!r} must be an IPv4 block between /16 and /20")
        return value


class ClusterSpec(Spec):
    """Cluster settings every cloud shares; each cluster component's args extend it."""

    kubernetes_version: str = "1.33"
    """Kubernetes minor version, as a quoted string. @default "1.33\""""
    endpoint: EndpointSpec = EndpointSpec()
    """API server exposure. @default private"""
    network: NetworkSpec = NetworkSpec()
    """VPC layout. @default 10.0.0.0/16; 3 zones and per-zone NAT in prod, else 2 and single"""
    system_pool: NodePoolSpec | None = None
    """Nodes for platform add-ons. @default 2 to 4 of m6i.large (aws), e2-standard-4 (gcp), Standard_D4s_v5 (azure)"""
    gpu_pools: tuple[GpuPoolSpec, ...] = ()
    """GPU node pools. @default none"""
    cpu_pools: tuple[CpuPoolSpec, ...] | None = None
    """General-purpose pools for tenants' CPU work (the system pool is tainted for platform pods only).
    @default one `general` pool of the system machine type, 0 to 4 nodes"""
    tags: dict[str, str] = {}
    """Extra cloud tags/labels on every resource. @default {}"""

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be a quoted string such as \"1.33\" (got {value!r})")
        if value not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"{value!r} is not supported; use one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
        return value


GpuDriver = Literal["cloud", "gpu-operator"]


class ManagedClusterArgs(ClusterSpec):
    """What every managed-cluster component (EKS, GKE, AKS) takes besides `ClusterSpec`."""

    cluster_name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
    """Physical cluster name (lower-case, at most 40 characters: GKE's limit)."""
    region: str
    """Cloud region or Azure location."""
    protect: bool = False
    """Protect the cluster and its encryption key from deletion. @default false"""
    gpu_driver: GpuDriver = "cloud"
    """Who installs the NVIDIA driver and device plugin: the cloud, or the GPU Operator. @default cloud"""


@dataclass(frozen=True)
class AutoscalerBinding:
    """What the cluster-autoscaler chart needs to run against this cluster's cloud."""

    values: pulumi.Input[dict]


class Cluster(Protocol):
    """The shape every cluster component has."""

    name: str
    cloud: str
    kubernetes_version: str
    gpu_pools: tuple[GpuPool, ...]
    k8s_provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    api_server: pulumi.Output[str]
    """The API server URL (https://...), as a kubeconfig wants it."""
    certificate_authority: pulumi.Output[str]
    system_node_labels: dict[str, str]
    nodes_ready: list[pulumi.Resource]
    """Resources after which pods can be scheduled (the system node pool)."""
    storage_ready: list[pulumi.Resource]
    """Resources after which PersistentVolumeClaims can bind (e.g. EKS's EBS CSI driver)."""
    autoscaler: AutoscalerBinding | None
    """Set when the cloud needs the cluster-autoscaler chart (none for native autoscalers)."""
    gpu_driver: str
    """Who runs the NVIDIA device plugin (and GPU sharing): "cloud" or "gpu-operator"."""
    gpu_operator_values: dict
    """GPU Operator chart values this cluster needs: driver/toolkit mode, host paths."""
    internal_lb_annotations: dict[str, str]
    """Service annotations that make a LoadBalancer internal on this cloud."""
    storage_class: str | None
    """StorageClass for platform volumes (None: the cluster default)."""
    system_taints: tuple[Taint, ...]
    """Taints of the system pool: platform pods tolerate exactly these (AKS: CriticalAddonsOnly)."""
    cpu_pools: tuple[CpuPool, ...]
    """General-purpose pools for tenant CPU work (untainted, or only the cloud's spot taint)."""
    critical_pods_need_quota: bool
    """Pods at node/cluster-critical priority need a PriorityClass-scoped ResourceQuota in their namespace."""
    egress_cidrs: pulumi.Output[list[str]]
    """The public addresses (/32) the cluster's pods reach the internet from; a remote API server
    that this cluster must call (MultiKueue) allows exactly these. Empty when unknown (existing)."""
    istio_platform: str | None
    """Istio's `global.platform` for its CNI plugin ("gke" puts CNI binaries where GKE wants them)."""


class ClusterComponent(pulumi.ComponentResource):
    """What every cluster component does first: validate its GPU pools (before anything
    is registered) and state the facts add-ons ask of it. Subclasses set the cloud facts
    as class attributes."""

    cloud: str
    type_token: str
    gpu_operator_values: dict = {}
    internal_lb_annotations: dict[str, str] = {}
    storage_class: str | None = None
    istio_platform: str | None = None
    autoscaler: AutoscalerBinding | None = None
    default_system_machine: str | None = None
    """Machine type of the system pool when config gives none."""
    system_taints: tuple[Taint, ...] = ()
    critical_pods_need_quota: bool = False
    """GKE admits `system-node-critical`/`system-cluster-critical` pods outside kube-system only
    where a ResourceQuota scoped to those PriorityClasses exists."""
    default_cpu_pools: tuple[CpuPoolSpec, ...] = ()
    """CPU pools when config gives none."""

    def __init__(self, name: str, args: ClusterSpec, gpu_driver: str, opts: pulumi.ResourceOptions | None):
        pools = resolve_gpu_pools(self.cloud, args.gpu_pools, gpu_driver)
        cpu_specs = self.default_cpu_pools if args.cpu_pools is None else args.cpu_pools
        names = [p.name for p in (*args.gpu_pools, *cpu_specs)]
        if len(set(names)) != len(names) or SYSTEM_POOL_NAME in names:
            raise ValueError(f"pool names must be unique and not {SYSTEM_POOL_NAME!r}: {names}")
        super().__init__(self.type_token, name, None, opts)
        self.name = name
        self.args = args
        self.kubernetes_version = args.kubernetes_version
        self.gpu_pools: tuple[GpuPool, ...] = pools
        self.cpu_pools: tuple[CpuPool, ...] = tuple(resolve_cpu_pool(self.cloud, p) for p in cpu_specs)
        self.gpu_driver = gpu_driver
        self.system_node_labels: dict[str, str] = {LABEL_POOL: SYSTEM_POOL_NAME}
        self.nodes_ready: list[pulumi.Resource] = []
        self.storage_ready: list[pulumi.Resource] = []
        self.egress_cidrs: pulumi.Output[list[str]] = pulumi.Output.from_input([])


def with_egress(static: tuple[str, ...], egress: pulumi.Input[list[str]] | None) -> pulumi.Input[list[str]]:
    """An API server allow list: the configured CIDRs plus the egress of the clusters that must
    call it (sorted and de-duplicated, so it never churns)."""
    if egress is None:
        return list(static)
    return pulumi.Output.from_input(egress).apply(lambda extra: sorted({*static, *(extra or [])}))


def host_cidrs(ips: list[str]) -> list[str]:
    return sorted(f"{ip}/32" for ip in ips if ip)


def exec_kubeconfig(context: str, server: str, ca_data: str, exec_spec: dict) -> str:
    """A kubeconfig whose user gets short-lived tokens from an exec plugin (no static secret)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
            "users": [
                {
                    "name": context,
                    "user": {
                        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "interactiveMode": "Never",
                                 **exec_spec}
                    },
                }
            ],
        }
    )
