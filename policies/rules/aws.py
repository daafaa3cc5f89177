"""AWS / EKS rules."""

from __future__ import annotations

import re

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import (
    ADVISORY,
    CRITICAL,
    GPU_RESOURCE,
    HIGH,
    LOW,
    MANDATORY,
    MEDIUM,
    aws_fsbp,
    cis_eks,
    get,
    is_list,
    items,
    open_to_internet,
    platform,
)

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
KMS_KEY = "aws:kms/key:Key"
ASG_TAG = "aws:autoscaling/tag:Tag"
AUDIT_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# Instance families with NVIDIA GPUs: p (p3, p4d, p5e, p6-b200, p6e-gb200...), g (g4dn, g5, g5g, g6,
# g6e, g6f...) and gr6; g4ad carries AMD GPUs. https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
_GPU_INSTANCE = re.compile(r"^(p[0-9]+[a-z]*(-[a-z0-9]+)?|g[0-9]+[a-z]*|gr[0-9]+[a-z]*)\.")
_NOT_NVIDIA = re.compile(r"^g4ad\.")


def is_gpu_node_group(props) -> bool:
    ami = str(get(props, "amiType", default=""))
    if "NVIDIA" in ami or "GPU" in ami:
        return True
    return any(_GPU_INSTANCE.match(str(t)) and not _NOT_NVIDIA.match(str(t)) for t in items(get(props, "instanceTypes")))


def _endpoint_private(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    vpc = get(args.props, "vpcConfig", default={})
    # EKS turns public access on when the field is left out.
    if get(vpc, "endpointPublicAccess", default=True) is False:
        return
    cidrs = [str(c) for c in items(get(vpc, "publicAccessCidrs"))]
    if not cidrs:
        report("The EKS API endpoint is public with no CIDR allow list, so it is open to 0.0.0.0/0.", None)
    elif any(open_to_internet(c) for c in cidrs):
        report(f"The EKS API endpoint allows {', '.join(c for c in cidrs if open_to_internet(c))}.", None)


def _secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    configs = get(args.props, "encryptionConfig", default={})
    # One object in the provider's schema; a list in the EKS API and some programs.
    configs = items(configs) if is_list(configs) else [configs]
    if not any("secrets" in items(get(c, "resources")) and get(c, "provider", "keyArn") for c in configs):
        report("Kubernetes secrets are not envelope-encrypted with a KMS key.", None)


def _audit_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    enabled = [str(t) for t in items(get(args.props, "enabledClusterLogTypes"))]
    missing = [t for t in AUDIT_LOG_TYPES if t not in enabled]
    if missing:
        report(f"Control-plane log types not enabled: {', '.join(missing)}.", None)


def _no_remote_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == EKS_NODE_GROUP and get(args.props, "remoteAccess"):
        report("The node group allows SSH remote access; use SSM or kubectl debug instead.", None)


def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LAUNCH_TEMPLATE:
        return
    options = get(args.props, "metadataOptions", default={})
    if get(options, "httpTokens") != "required":
        report("The launch template does not require IMDSv2 (metadataOptions.httpTokens: required).", None)
    elif get(options, "httpPutResponseHopLimit", default=1) > 2:
        report("IMDS hop limit above 2 lets containers reach the node's credentials.", None)


def _gpu_group_tainted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_NODE_GROUP or not is_gpu_node_group(args.props):
        return
    taints = items(get(args.props, "taints"))
    if not any(get(t, "key") == GPU_RESOURCE and get(t, "effect") in ("NO_SCHEDULE", "NO_EXECUTE") for t in taints):
        report(f"GPU node group has no {GPU_RESOURCE} NoSchedule taint: any pod could land on (and pin) its GPUs.", None)


def _key_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == KMS_KEY and get(args.props, "enableKeyRotation") is not True:
        report("The KMS key does not rotate (enableKeyRotation).", None)


def _gpu_asg_discovery_tags(args: StackValidationArgs, report: ReportViolation) -> None:
    tags: dict[str, set[str]] = {}
    for r in args.resources:
        if r.resource_type == ASG_TAG:
            tags.setdefault(get(r.props, "autoscalingGroupName", default=""), set()).add(get(r.props, "tag", "key"))
    for r in args.resources:
        if r.resource_type != EKS_NODE_GROUP or not is_gpu_node_group(r.props):
            continue
        cluster = get(r.props, "clusterName", default="")
        for asg in [g for res in items(get(r.props, "resources")) for g in items(get(res, "autoscalingGroups"))]:
            keys = tags.get(get(asg, "name", default=""), set())
            needed = {"k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{cluster}",
                      f"k8s.io/cluster-autoscaler/node-template/resources/{GPU_RESOURCE}"}
            if missing := sorted(needed - keys):
                report(f"GPU Auto Scaling group {get(asg, 'name')} lacks tags {', '.join(missing)}.", r.urn)


POLICIES = (
    ResourceValidationPolicy(
        name="aws-eks-cluster-endpoint-private",
        description="The EKS API endpoint is private, or public only to an explicit CIDR allow list without 0.0.0.0/0.",
        validate=_endpoint_private, enforcement_level=MANDATORY, severity=CRITICAL, framework=aws_fsbp("EKS.1"),
        remediation_steps="Keep `endpoint.public: false` (the default), or list your office/VPN CIDRs in "
                          "`endpoint.authorizedNetworks`; never 0.0.0.0/0.",
    ),
    ResourceValidationPolicy(
        name="aws-eks-cluster-secrets-encryption",
        description="Kubernetes secrets are envelope-encrypted with a KMS key.",
        validate=_secrets_encryption, enforcement_level=MANDATORY, severity=HIGH, framework=cis_eks("5.3.1"),
        remediation_steps="Set encryptionConfig {resources: [secrets], provider.keyArn}; EksCluster always does.",
    ),
    ResourceValidationPolicy(
        name="aws-eks-cluster-audit-logs",
        description="All control-plane log types (api, audit, authenticator, controllerManager, scheduler) are enabled.",
        validate=_audit_logs, enforcement_level=MANDATORY, severity=MEDIUM, framework=cis_eks("2.1.1"),
        remediation_steps="Set enabledClusterLogTypes to all five types.",
    ),
    ResourceValidationPolicy(
        name="aws-eks-nodegroup-no-remote-access",
        description="Node groups do not open SSH remote access.",
        validate=_no_remote_access, enforcement_level=MANDATORY, severity=HIGH, framework=platform("node-access"),
        remediation_steps="Remove remoteAccess; reach nodes with SSM Session Manager or `kubectl debug node`.",
    ),
    ResourceValidationPolicy(
        name="aws-ec2-launchtemplate-imdsv2",
        description="Launch templates require IMDSv2 with a hop limit of at most 2.",
        validate=_imdsv2, enforcement_level=MANDATORY, severity=HIGH, framework=aws_fsbp("EC2.8"),
        remediation_steps="Set metadataOptions {httpTokens: required, httpPutResponseHopLimit: 1}.",
    ),
    ResourceValidationPolicy(
        name="aws-eks-nodegroup-gpu-taint",
        description="Every GPU node group carries the nvidia.com/gpu NoSchedule taint.",
        validate=_gpu_group_tainted, enforcement_level=MANDATORY, severity=HIGH, framework=platform("gpu-isolation"),
        remediation_steps="Add taint {key: nvidia.com/gpu, value: 'true', effect: NO_SCHEDULE}; EksCluster does this "
                          "for every GPU pool.",
    ),
    ResourceValidationPolicy(
        name="aws-kms-key-rotation",
        description="KMS keys rotate automatically.",
        validate=_key_rotation, enforcement_level=MANDATORY, severity=MEDIUM, framework=aws_fsbp("KMS.4"),
        remediation_steps="Set enableKeyRotation: true.",
    ),
    StackValidationPolicy(
        name="aws-autoscaling-gpu-discovery-tags",
        description="Every GPU node group's Auto Scaling group carries the cluster-autoscaler discovery and "
                    "scale-from-zero tags.",
        validate=_gpu_asg_discovery_tags, enforcement_level=ADVISORY, severity=LOW,
        framework=platform("gpu-autoscaling"),
        remediation_steps="Tag the ASG itself (aws.autoscaling.Tag) with k8s.io/cluster-autoscaler/enabled, "
                          "k8s.io/cluster-autoscaler/<cluster> and node-template/resources/nvidia.com/gpu.",
    ),
)
