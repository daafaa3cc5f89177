"""Azure / AKS rules."""

from __future__ import annotations

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import (
    CRITICAL,
    GPU_RESOURCE,
    HIGH,
    MANDATORY,
    MEDIUM,
    cis_aks,
    get,
    items,
    only,
    open_to_internet,
    platform,
    resource_policy,
)

AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"
AKS_AGENT_POOL = "azure-native:containerservice:AgentPool"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
SYSTEM_TAINT = "CriticalAddonsOnly=true:NoSchedule"
AUDIT_CATEGORIES = {"kube-audit", "kube-audit-admin"}
# Category groups that include kube-audit(-admin) for AKS:
# https://learn.microsoft.com/azure/aks/monitor-aks-reference#resource-logs
AUDIT_CATEGORY_GROUPS = {"audit", "allLogs"}


_cluster = only(AKS_CLUSTER)


def _azure_rbac(args, report):
    aad = get(args.props, "aadProfile", default={})
    if get(aad, "managed") is not True or get(aad, "enableAzureRBAC") is not True:
        report("Entra ID integration with Azure RBAC is not enabled (aadProfile.managed, enableAzureRBAC).", None)


def _local_accounts(args, report):
    if get(args.props, "disableLocalAccounts") is not True:
        report("Local accounts (a static admin kubeconfig) are enabled.", None)


def _api_access(args, report):
    api = get(args.props, "apiServerAccessProfile", default={})
    if get(api, "enablePrivateCluster") is True:
        return
    ranges = [str(c) for c in items(get(api, "authorizedIPRanges"))]
    if not ranges:
        report("The API server is public with no authorized IP ranges.", None)
    elif any(open_to_internet(r) for r in ranges):
        report("Authorized IP ranges include 0.0.0.0/0.", None)


def _network_policy(args, report):
    if get(args.props, "networkProfile", "networkPolicy") not in ("azure", "calico", "cilium"):
        report("No network policy engine (networkProfile.networkPolicy).", None)


def _workload_identity(args, report):
    if get(args.props, "oidcIssuerProfile", "enabled") is not True:
        report("The OIDC issuer is disabled.", None)
    if get(args.props, "securityProfile", "workloadIdentity", "enabled") is not True:
        report("Workload identity is disabled.", None)


def _is_gpu_size(vm_size: str) -> bool:
    return vm_size.startswith(("Standard_N", "standard_n"))


def _gpu_and_system_taints(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pools = []
    if args.resource_type == AKS_AGENT_POOL:
        pools = [args.props]
    elif args.resource_type == AKS_CLUSTER:
        pools = items(get(args.props, "agentPoolProfiles"))
    for pool in pools:
        taints = [str(t) for t in items(get(pool, "nodeTaints"))]
        name = get(pool, "name", default=get(pool, "agentPoolName", default="?"))
        if get(pool, "mode") == "System" and SYSTEM_TAINT not in taints:
            report(f"System pool {name} is not tainted {SYSTEM_TAINT}.", None)
        if _is_gpu_size(str(get(pool, "vmSize", default=""))) and not any(
            t.startswith(f"{GPU_RESOURCE}=") and t.endswith((":NoSchedule", ":NoExecute")) for t in taints
        ):
            report(f"GPU pool {name} has no {GPU_RESOURCE} NoSchedule taint.", None)


def _audit_diagnostics(args: StackValidationArgs, report: ReportViolation) -> None:
    audited = set()
    for r in args.resources:
        if r.resource_type == DIAGNOSTIC_SETTING:
            logs = items(get(r.props, "logs"))
            if any((get(log, "category") in AUDIT_CATEGORIES or get(log, "categoryGroup") in AUDIT_CATEGORY_GROUPS)
                   and get(log, "enabled") is True for log in logs):
                audited.add(get(r.props, "resourceUri"))
    for r in args.resources:
        if r.resource_type == AKS_CLUSTER and get(r.props, "id") not in audited:
            report("The AKS cluster sends no kube-audit logs to a diagnostic destination.", r.urn)


def _policy(name, description, validate, level, severity, control, remediation, **extra):
    framework = cis_aks(control) if control else platform("gpu-isolation")
    return resource_policy(name, description, validate, level, severity, framework, remediation, **extra)


POLICIES = (
    _policy("azure-aks-cluster-azure-rbac", "Entra ID integration with Azure RBAC.", _cluster(_azure_rbac),
            MANDATORY, HIGH, "5.4.1", "Set aadProfile {managed: true, enableAzureRBAC: true}."),
    _policy("azure-aks-cluster-local-accounts-disabled", "Local accounts are disabled.", _cluster(_local_accounts),
            MANDATORY, HIGH, "5.4.2", "Set disableLocalAccounts: true."),
    _policy("azure-aks-cluster-api-access",
            "The API server is private, or public only to authorized IP ranges without 0.0.0.0/0.",
            _cluster(_api_access), MANDATORY, CRITICAL, "5.4.3",
            "Keep endpoint.public false, or list your CIDRs in endpoint.authorizedNetworks."),
    _policy("azure-aks-cluster-network-policy", "A NetworkPolicy engine is enabled.", _cluster(_network_policy),
            MANDATORY, HIGH, "5.4.4", "Set networkProfile.networkPolicy to cilium (or azure)."),
    _policy("azure-aks-cluster-workload-identity", "The OIDC issuer and workload identity are enabled.",
            _cluster(_workload_identity), MANDATORY, MEDIUM, "5.2.1",
            "Enable oidcIssuerProfile and securityProfile.workloadIdentity."),
    _policy("azure-aks-agentpool-taints", "GPU pools carry the nvidia.com/gpu taint and the system pool "
            "CriticalAddonsOnly.", _gpu_and_system_taints, MANDATORY, HIGH, None,
            "Taint GPU pools nvidia.com/gpu=present:NoSchedule and the system pool CriticalAddonsOnly=true:NoSchedule."),
    StackValidationPolicy(
        name="azure-aks-cluster-audit-diagnostics",
        description="Every AKS cluster sends kube-audit logs to a diagnostic destination.",
        validate=_audit_diagnostics, enforcement_level=MANDATORY, severity=MEDIUM, framework=cis_aks("2.1.1"),
        remediation_steps="Add a DiagnosticSetting on the cluster with kube-audit-admin (and guard) logs enabled.",
    ),
)
