"""AWS / EKS rules."""

from __future__ import annotations

import ipaddress
import re

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from .common import GPU_RESOURCE, cis_eks, get, platform

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
# p*/g* instance families carry NVIDIA GPUs; *g (Graviton) sizes of g5g too.
_GPU_INSTANCE = re.compile(r"^(p\d+[a-z-]*|g\d+[a-z]*)\.")


def _open_to_internet(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def _endpoint_private(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    vpc = get(args.props, "vpcConfig", default={})
    # EKS turns public access on when the field is left out.
    if get(vpc, "endpointPublicAccess", default=True) is False:
        return
    cidrs = get(vpc, "publicAccessCidrs", default=[])
    if not cidrs:
        report("The EKS API endpoint is public with no CIDR allow list, so it is open to 0.0.0.0/0.", None)
    elif any(_open_to_internet(c) for c in cidrs):
        report(f"The EKS API endpoint allows {', '.join(c for c in cidrs if _open_to_internet(c))}.", None)


def _is_gpu_group(props) -> bool:
    ami = str(get(props, "amiType", default=""))
    if "NVIDIA" in ami or "GPU" in ami:
        return True
    return any(_GPU_INSTANCE.match(str(t)) for t in get(props, "instanceTypes", default=[]))


def _gpu_group_tainted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_NODE_GROUP or not _is_gpu_group(args.props):
        return
    taints = get(args.props, "taints", default=[])
    if not any(
        get(t, "key") == GPU_RESOURCE and get(t, "effect") in ("NO_SCHEDULE", "NO_EXECUTE") for t in taints
    ):
        report(
            f"GPU node group has no {GPU_RESOURCE} NoSchedule taint: any pod could land on (and pin) its GPUs.",
            None,
        )


eks_endpoint_private = ResourceValidationPolicy(
    name="aws-eks-cluster-endpoint-private",
    description="The EKS API endpoint is private, or public only to an explicit CIDR allow list without 0.0.0.0/0.",
    validate=_endpoint_private,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    framework=cis_eks("5.4.2"),
    remediation_steps=(
        "Keep `endpoint.public: false` (the default), or set `endpoint.authorizedNetworks` to your "
        "office/VPN CIDRs; never 0.0.0.0/0."
    ),
)

eks_gpu_node_group_tainted = ResourceValidationPolicy(
    name="aws-eks-nodegroup-gpu-taint",
    description="Every GPU node group carries the nvidia.com/gpu NoSchedule taint.",
    validate=_gpu_group_tainted,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=platform("gpu-isolation"),
    remediation_steps=(
        "Add taint {key: nvidia.com/gpu, value: 'true', effect: NO_SCHEDULE} to the node group; "
        "EksCluster does this for every GPU pool."
    ),
)

POLICIES = (eks_endpoint_private, eks_gpu_node_group_tainted)
