"""Stack-level rules: relations between resources."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import GPU_RESOURCE, TENANT_LABEL, get, platform

NAMESPACE = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"


def _cluster_of(resource) -> str:
    return resource.provider.urn if resource.provider is not None else ""


def _tenant_gpu_quota(args: StackValidationArgs, report: ReportViolation) -> None:
    gpu_quota = {
        (_cluster_of(r), get(r.props, "metadata", "namespace"))
        for r in args.resources
        if r.resource_type == RESOURCE_QUOTA
        and get(r.props, "spec", "hard", f"requests.{GPU_RESOURCE}") is not None
    }
    for r in args.resources:
        if r.resource_type != NAMESPACE or get(r.props, "metadata", "labels", TENANT_LABEL) is None:
            continue
        name = get(r.props, "metadata", "name")
        if (_cluster_of(r), name) not in gpu_quota:
            report(f"Tenant namespace {name!r} has no ResourceQuota on requests.{GPU_RESOURCE}.", r.urn)


tenant_gpu_quota = StackValidationPolicy(
    name="kubernetes-namespace-gpu-quota",
    description="Every tenant namespace has a ResourceQuota that limits requests.nvidia.com/gpu.",
    validate=_tenant_gpu_quota,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=platform("tenant-isolation"),
    remediation_steps=(
        "Create tenants through the Tenant component (it always sets the quota), or add a ResourceQuota "
        "with `requests.nvidia.com/gpu` to the namespace."
    ),
)

POLICIES = (tenant_gpu_quota,)
