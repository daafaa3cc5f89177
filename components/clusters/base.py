"""What every cluster component looks like, and the node pool specs they share.

Add-ons and tenants only ever see a `Cluster`; they never branch on the cloud.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator, model_validator

from ..addons.versions import SUPPORTED_KUBERNETES_VERSIONS
from ..spec import DnsLabel, Spec
from . import catalog

GPU_RESOURCE = "nvidia.com/gpu"
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


class GpuPoolSpec(NodePoolSpec):
    """A GPU node pool as the user describes it."""

    name: DnsLabel
    """Pool name, unique within the cluster; becomes the `ai-platform.io/pool` node label."""
    min: int = Field(default=0, ge=0, le=1000)
    """Fewest nodes; 0 lets the pool scale to zero. @default 0"""
    max: int = Field(default=2, ge=1, le=1000)
    """Most nodes. @default 2"""
    gpus: int | None = Field(default=None, gt=0, le=16)
    """GPUs per node. @default taken from the machine type's catalog entry"""
    gpu_model: str | None = None
    """GPU model label such as `a100` or `l4`. @default taken from the machine type's catalog entry"""
    capacity: Capacity = "on-demand"
    """`on-demand` or `spot`. @default on-demand"""
    disk_size_gb: int = Field(default=200, ge=20, le=16384)
    """Root volume size in GiB; container images for ML are large. @default 200"""


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
    machine_type: str
    gpus: int
    gpu_model: str
    min: int
    max: int
    capacity: str
    disk_size_gb: int
    taint: Taint
    labels: dict[str, str] = field(default_factory=dict)


class GpuPoolError(ValueError):
    """A GPU pool that cannot work; `key` names the offending field."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def resolve_gpu_pool(cloud: str, spec: GpuPoolSpec, taint_value: str) -> GpuPool:
    """Fill in the GPU model and count from the catalog, rejecting contradictions."""
    known = catalog.lookup(cloud, spec.machine_type)
    if known is None:
        if spec.gpus is None or spec.gpu_model is None:
            raise GpuPoolError(
                "machineType",
                f"{spec.machine_type!r} is not a GPU machine type known for {cloud}; "
                "use a known type or set both gpus and gpuModel for pool "
                f"{spec.name!r}",
            )
        model, gpus = spec.gpu_model, spec.gpus
    else:
        model, gpus = known
        if spec.gpu_model is not None and spec.gpu_model != model:
            raise GpuPoolError(
                "gpuModel",
                f"pool {spec.name!r}: {spec.machine_type} carries {model}, not {spec.gpu_model}",
            )
        if spec.gpus is not None and spec.gpus != gpus:
            raise GpuPoolError(
                "gpus",
                f"pool {spec.name!r}: {spec.machine_type} has {gpus} GPU(s), not {spec.gpus}",
            )
    labels = {LABEL_POOL: spec.name, LABEL_GPU_MODEL: model, LABEL_CAPACITY: spec.capacity}
    return GpuPool(
        name=spec.name,
        machine_type=spec.machine_type,
        gpus=gpus,
        gpu_model=model,
        min=spec.min,
        max=spec.max,
        capacity=spec.capacity,
        disk_size_gb=spec.disk_size_gb,
        taint=Taint(GPU_RESOURCE, taint_value),
        labels=labels,
    )


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
    """Nodes for platform add-ons. @default aws: m6i.large, 2 to 4 nodes"""
    gpu_pools: tuple[GpuPoolSpec, ...] = ()
    """GPU node pools. @default none"""
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
    certificate_authority: pulumi.Output[str]
    system_node_labels: dict[str, str]
    nodes_ready: list[pulumi.Resource]
    """Resources after which pods can be scheduled (the system node pool)."""
    autoscaler: AutoscalerBinding | None
    """Set when the cloud needs the cluster-autoscaler chart (none for native autoscalers)."""
