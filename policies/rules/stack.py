"""Stack-level rules: relations between resources (per cluster, told apart by provider)."""

from __future__ import annotations

import re

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .aws import EKS_NODE_GROUP, is_gpu_node_group
from .common import (
    CIDR_CONFIG,
    GPU_RESOURCE,
    HIGH,
    MANDATORY,
    MEDIUM,
    TENANT_LABEL,
    bad_cidrs,
    get,
    items,
    kind_of,
    outside,
    platform,
)
from .gcp import is_gpu_node_pool
from .kubernetes import HELM_TYPES, PLATFORM_NAMESPACES

NAMESPACE = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
LIMIT_RANGE = "kubernetes:core/v1:LimitRange"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
AUTHORIZATION_POLICY = ":AuthorizationPolicy"
CLUSTER_QUEUE = ":ClusterQueue"
ADMISSION_CHECK = ":AdmissionCheck"
MULTIKUEUE_CONTROLLER = "kueue.x-k8s.io/multikueue"
PROTECTED_TYPES = {
    "aws:eks/cluster:Cluster": "EKS cluster",
    "aws:kms/key:Key": "KMS key",
    "gcp:container/cluster:Cluster": "GKE cluster",
    "gcp:kms/cryptoKey:CryptoKey": "Cloud KMS key",
    "azure-native:containerservice:ManagedCluster": "AKS cluster",
}


def _cluster_of(resource) -> str:
    return resource.provider.urn if resource.provider is not None else ""


def _tenant_namespaces(args: StackValidationArgs):
    for r in args.resources:
        if r.resource_type == NAMESPACE and get(r.props, "metadata", "labels", TENANT_LABEL) is not None:
            yield r, get(r.props, "metadata", "name")


def _in_namespace(args: StackValidationArgs, type_test) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for r in args.resources:
        if type_test(r.resource_type):
            out.setdefault((_cluster_of(r), get(r.props, "metadata", "namespace")), []).append(r.props)
    return out


def _releases(args: StackValidationArgs, chart: str) -> list:
    """Helm releases (helm.sh/v3 Release, helm.sh/v4 Chart) of a chart, whatever its repository."""
    return [r for r in args.resources
            if r.resource_type in HELM_TYPES and str(get(r.props, "chart", default="")).rsplit("/", 1)[-1] == chart]


def _istiod_releases(args: StackValidationArgs) -> dict[str, str]:
    """cluster (provider URN) -> URN of the istiod release installed there."""
    return {_cluster_of(r): r.urn for r in _releases(args, "istiod")}


def _mesh_clusters(args: StackValidationArgs) -> set[str]:
    return set(_istiod_releases(args))


def _tenant_gpu_quota(args: StackValidationArgs, report: ReportViolation) -> None:
    quotas = _in_namespace(args, lambda t: t == RESOURCE_QUOTA)
    for ns, name in _tenant_namespaces(args):
        covering = [q for q in quotas.get((_cluster_of(ns), name), [])
                    if f"requests.{GPU_RESOURCE}" in get(q, "spec", "hard", default={})]
        # A scoped quota (BestEffort, a PriorityClass...) limits only the pods in its scope.
        if not any(not get(q, "spec", "scopes") and not get(q, "spec", "scopeSelector") for q in covering):
            report(f"Tenant namespace {name!r} has no ResourceQuota on requests.{GPU_RESOURCE} that covers every "
                   "pod (an unscoped one).", ns.urn)


def _default_deny(policy) -> bool:
    spec = get(policy, "spec", default={})
    return (get(spec, "podSelector", default={}) == {} and {"Ingress", "Egress"} <= {str(t) for t in items(get(spec, "policyTypes"))}
            and not get(spec, "ingress") and not get(spec, "egress"))


def _tenant_isolation(args: StackValidationArgs, report: ReportViolation) -> None:
    limits = _in_namespace(args, lambda t: t == LIMIT_RANGE)
    netpols = _in_namespace(args, lambda t: t == NETWORK_POLICY)
    authz = _in_namespace(args, lambda t: t.startswith("kubernetes:security.istio.io/") and t.endswith(AUTHORIZATION_POLICY))
    mesh = _mesh_clusters(args)
    for ns, name in _tenant_namespaces(args):
        key = (_cluster_of(ns), name)
        if not limits.get(key):
            report(f"Tenant namespace {name!r} has no LimitRange.", ns.urn)
        if not any(_default_deny(p) for p in netpols.get(key, [])):
            report(f"Tenant namespace {name!r} has no default-deny NetworkPolicy (ingress and egress).", ns.urn)
        if key[0] in mesh and not authz.get(key):
            report(f"Tenant namespace {name!r} has no Istio AuthorizationPolicy.", ns.urn)
    tenants = {(_cluster_of(ns), name) for ns, name in _tenant_namespaces(args)}
    for r in args.resources:
        if r.resource_type != NAMESPACE + "Patch":
            continue
        labels = get(r.props, "metadata", "labels", default={})
        level = labels.get("pod-security.kubernetes.io/enforce") if hasattr(labels, "get") else None
        if (_cluster_of(r), get(r.props, "metadata", "name")) in tenants and level not in (None, "restricted"):
            report(f"NamespacePatch relaxes tenant namespace {get(r.props, 'metadata', 'name')!r} to Pod Security "
                   f"{level!r}.", r.urn)


def _peer_authentications(args: StackValidationArgs):
    # Istio serves v1 and v1beta1 (and a Patch of either reaches the same object).
    return [r for r in args.resources if r.resource_type.startswith("kubernetes:security.istio.io/")
            and kind_of(r.resource_type) == "PeerAuthentication"]


def _mtls_strict(args: StackValidationArgs, report: ReportViolation) -> None:
    strict_mesh_wide = set()
    for r in _peer_authentications(args):
        name = get(r.props, "metadata", "name")
        mode = get(r.props, "spec", "mtls", "mode", default="UNSET")
        if mode in ("PERMISSIVE", "DISABLE"):
            report(f"PeerAuthentication {name} sets mTLS {mode}.", r.urn)
        ports = get(r.props, "spec", "portLevelMtls", default={})
        for port in ports if hasattr(ports, "keys") else []:
            port_mode = get(ports, port, "mode", default="UNSET")
            if port_mode in ("PERMISSIVE", "DISABLE"):
                report(f"PeerAuthentication {name} sets mTLS {port_mode} on port {port}.", r.urn)
        if get(r.props, "metadata", "namespace") == "istio-system" and not get(r.props, "spec", "selector") \
                and mode == "STRICT" and not r.resource_type.endswith("Patch"):
            strict_mesh_wide.add(_cluster_of(r))
    for cluster, istiod in _istiod_releases(args).items():
        if cluster not in strict_mesh_wide:
            report("Istio runs without a mesh-wide STRICT PeerAuthentication in istio-system.", istiod)


def _gpu_pools(args: StackValidationArgs):
    """(resource, tainted, autoscaled) for every GPU node pool on every cloud."""
    for r in args.resources:
        p = r.props
        if r.resource_type == EKS_NODE_GROUP and is_gpu_node_group(p):
            taints = items(get(p, "taints"))
            scaling = get(p, "scalingConfig", default={})
            yield r, any(get(t, "key") == GPU_RESOURCE for t in taints), \
                get(scaling, "maxSize", default=0) > get(scaling, "minSize", default=0)
        elif r.resource_type == "gcp:container/nodePool:NodePool" and is_gpu_node_pool(p):
            taints = items(get(p, "nodeConfig", "taints"))
            yield r, any(get(t, "key") == GPU_RESOURCE for t in taints), bool(get(p, "autoscaling"))
        elif r.resource_type == "azure-native:containerservice:AgentPool" and str(
                get(p, "vmSize", default="")).startswith("Standard_N"):
            taints = items(get(p, "nodeTaints"))
            yield r, any(str(t).startswith(f"{GPU_RESOURCE}=") for t in taints), get(p, "enableAutoScaling") is True


def _gpu_pools_tainted_autoscaled(args: StackValidationArgs, report: ReportViolation) -> None:
    # An autoscaler scales the groups of the cluster it discovers (autoDiscovery.clusterName), or
    # the Auto Scaling groups it is given by name; one on another cluster scales nothing here.
    discovered, named = set(), set()
    for rel in _releases(args, "cluster-autoscaler"):
        values = get(rel.props, "values", default={})
        if get(values, "autoDiscovery", "clusterName"):
            discovered.add(str(get(values, "autoDiscovery", "clusterName")))
        named |= {str(get(g, "name")) for g in items(get(values, "autoscalingGroups"))}
    for r, tainted, autoscaled in _gpu_pools(args):
        if not tainted:
            report("GPU node pool is not tainted nvidia.com/gpu.", r.urn)
        if not autoscaled:
            report("GPU node pool is not autoscaled (fixed size, or autoscaling off).", r.urn)
        elif r.resource_type == EKS_NODE_GROUP:
            cluster = str(get(r.props, "clusterName", default=""))
            groups = {str(get(g, "name")) for res in items(get(r.props, "resources"))
                      for g in items(get(res, "autoscalingGroups"))}
            if cluster not in discovered and not (groups and groups <= named):
                report(f"EKS GPU node group of cluster {cluster!r}, but no cluster-autoscaler discovers that "
                       "cluster (autoDiscovery.clusterName) to scale it.", r.urn)


def _stack_name(args: StackValidationArgs) -> str:
    urn = next((r.urn for r in args.resources), "")
    return urn.split("::")[0].removeprefix("urn:pulumi:")


def _production_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    pattern = str(args.get_config().get("productionStacks", "^prod"))
    try:
        production = re.search(pattern, _stack_name(args)) is not None
    except re.error as exc:
        # Fail closed: a pattern this pack cannot read must not turn protection off.
        report(f"Policy config productionStacks {pattern!r} is not a regular expression this pack can use ({exc}); "
               "every stack is treated as production.", None)
        production = True
    if not production:
        return
    for r in args.resources:
        if r.resource_type in PROTECTED_TYPES and not r.opts.protect:
            report(f"Production {PROTECTED_TYPES[r.resource_type]} is not protected from deletion.", r.urn)


def _multikueue_checks(args: StackValidationArgs, report: ReportViolation) -> None:
    multikueue = {get(r.props, "metadata", "name") for r in args.resources
                  if r.resource_type.endswith(ADMISSION_CHECK)
                  and get(r.props, "spec", "controllerName") == MULTIKUEUE_CONTROLLER}
    for r in args.resources:
        if not (r.resource_type.startswith("kubernetes:kueue.x-k8s.io/") and r.resource_type.endswith(CLUSTER_QUEUE)):
            continue
        # v1beta2 has admissionChecksStrategy only; v1beta1 (still served) also a plain list of names.
        checks = [get(c, "name") for c in items(get(r.props, "spec", "admissionChecksStrategy", "admissionChecks"))]
        plain_checks = [str(c) for c in items(get(r.props, "spec", "admissionChecks"))]
        mk = [c for c in [*checks, *plain_checks] if c in multikueue]
        if len(mk) > 1:
            report(f"ClusterQueue has {len(mk)} MultiKueue admission checks; Kueue allows one.", r.urn)
        if any(get(c, "onFlavors") and get(c, "name") in multikueue
               for c in items(get(r.props, "spec", "admissionChecksStrategy", "admissionChecks"))):
            report("ClusterQueue applies its MultiKueue admission check per flavor; Kueue deactivates such a queue.",
                   r.urn)


# Addresses this stack's own clusters reach the internet from (NAT), by resource type.
EGRESS_ADDRESSES = {"aws:ec2/eip:Eip": ("publicIp",), "gcp:compute/address:Address": ("address",)}


def _endpoint_networks(r) -> list[str] | None:
    """The allow list of a public API endpoint (None: private, or not a cluster)."""
    p = r.props
    if r.resource_type == "aws:eks/cluster:Cluster":
        vpc = get(p, "vpcConfig", default={})
        return None if get(vpc, "endpointPublicAccess", default=True) is False else items(
            get(vpc, "publicAccessCidrs"))
    if r.resource_type == "gcp:container/cluster:Cluster":
        # No IP endpoint at all (DNS endpoint only, IAM-authorized), or a private one.
        if get(p, "privateClusterConfig", "enablePrivateEndpoint") is True or \
                get(p, "controlPlaneEndpointsConfig", "ipEndpointsConfig", "enabled") is False:
            return None
        return [get(c, "cidrBlock") for c in items(get(p, "masterAuthorizedNetworksConfig", "cidrBlocks"))]
    if r.resource_type == "azure-native:containerservice:ManagedCluster":
        api = get(p, "apiServerAccessProfile", default={})
        return None if get(api, "enablePrivateCluster") is True else items(get(api, "authorizedIPRanges"))
    return None


def _endpoint_allowed_networks(args: StackValidationArgs, report: ReportViolation) -> None:
    """Public API endpoints admit only the approved networks plus this stack's own egress
    addresses (a MultiKueue manager's NAT), which the stack creates and so cannot be spoofed."""
    allowed = [str(c) for c in items(args.get_config().get("allowedCidrs", []))]
    if bad := bad_cidrs(allowed):
        report(f"Policy config allowedCidrs has entries that are not networks: {', '.join(bad)}.", None)
        allowed = [c for c in allowed if c not in bad] or ["255.255.255.255/32"]  # fail closed
    if not allowed:
        return
    own = {f"{get(r.props, *path)}/32" for r in args.resources
           for path in [EGRESS_ADDRESSES.get(r.resource_type)] if path and get(r.props, *path)}
    for r in args.resources:
        networks = _endpoint_networks(r)
        if networks is None:
            continue
        if bad := outside([c for c in networks if c not in own], allowed):
            report(f"The public API endpoint allows {', '.join(map(str, bad))}, outside the policy's allowedCidrs "
                   "and not an egress address of this stack.", r.urn)


SERVING_VISIBILITY = {
    # kind -> (API group, label that keeps it inside the cluster)
    "InferenceService": ("serving.kserve.io", "networking.kserve.io/visibility"),
    "Service": ("serving.knative.dev", "networking.knative.dev/visibility"),
}


def _allows_everyone(policy) -> bool:
    spec = get(policy, "spec", default={})
    action = get(spec, "action", default="ALLOW")
    return action == "ALLOW" and any(not rule for rule in items(get(spec, "rules")))


def _serving_authorized(args: StackValidationArgs, report: ReportViolation) -> None:
    """A model server reachable from outside the mesh (through the ingress gateway) needs an
    AuthorizationPolicy in its namespace that does not allow everyone."""
    authz = _in_namespace(args, lambda t: t.startswith("kubernetes:security.istio.io/") and t.endswith(AUTHORIZATION_POLICY))
    for r in args.resources:
        kind = r.resource_type.rsplit(":", 1)[-1]  # not kind_of: a Patch does not create a server
        if kind not in SERVING_VISIBILITY:
            continue
        group, label = SERVING_VISIBILITY[kind]
        if not r.resource_type.startswith(f"kubernetes:{group}/"):
            continue
        namespace = get(r.props, "metadata", "namespace", default="default")
        if namespace in PLATFORM_NAMESPACES:
            continue
        if get(r.props, "metadata", "labels", label) == "cluster-local":
            continue
        policies = [p for p in authz.get((_cluster_of(r), namespace), []) if not _allows_everyone(p)]
        if not policies:
            report(f"{kind} {get(r.props, 'metadata', 'name')!r} in {namespace!r} is exposed outside the mesh "
                   "without an AuthorizationPolicy in its namespace.", r.urn)


def _policy(name, description, validate, level, severity, reference, remediation, **extra):
    return StackValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level,
                                 severity=severity, framework=platform(reference), remediation_steps=remediation,
                                 **extra)


POLICIES = (
    _policy("kubernetes-namespace-gpu-quota", "Every tenant namespace has an unscoped ResourceQuota (one that "
            "covers every pod) that limits requests.nvidia.com/gpu.", _tenant_gpu_quota, MANDATORY, HIGH, "tenant-isolation",
            "Create tenants with the Tenant component (it always sets the quota), or add a ResourceQuota with "
            "requests.nvidia.com/gpu."),
    _policy("stack-tenant-namespace-isolation", "Every tenant namespace has a LimitRange, a default-deny "
            "NetworkPolicy, and (where Istio runs) an AuthorizationPolicy; no NamespacePatch relaxes its Pod "
            "Security.", _tenant_isolation, MANDATORY, HIGH, "tenant-isolation", "Create tenants with the Tenant component."),
    _policy("stack-mesh-mtls-strict", "Where Istio runs, mTLS is STRICT mesh-wide and nowhere relaxed.",
            _mtls_strict, MANDATORY, HIGH, "mesh-mtls",
            "Keep the mesh add-on's default PeerAuthentication (STRICT) and add no PERMISSIVE ones."),
    _policy("stack-gpu-pools-tainted-autoscaled", "Every GPU node pool, on every cloud, is tainted and autoscaled.",
            _gpu_pools_tainted_autoscaled, MANDATORY, HIGH, "gpu-isolation",
            "Give GPU pools max > min (min 0 scales to zero) and keep the GPU taint; on EKS keep the "
            "clusterAutoscaler add-on."),
    _policy("stack-production-protection", "In production stacks, clusters and encryption keys are protected "
            "from deletion.", _production_protected, MANDATORY, HIGH, "resilience",
            "Leave clusters[].protect at its prod default (true).",
            config_schema=PolicyConfigSchema(properties={"productionStacks": {
                "type": "string", "format": "regex", "minLength": 1, "default": "^prod",
                "description": "Regular expression on the stack name; matching stacks are production."}})),
    _policy("stack-endpoint-allowed-networks", "Public Kubernetes API endpoints (EKS, GKE, AKS) admit only the "
            "policy's allowedCidrs and the stack's own NAT egress addresses.", _endpoint_allowed_networks, MANDATORY,
            HIGH, "network-exposure",
            "Keep endpoints private, or list only approved networks in authorizedNetworks; the MultiKueue "
            "manager's egress is added by the program.", config_schema=CIDR_CONFIG),
    _policy("stack-serving-exposure-authorized", "A KServe InferenceService or Knative Service outside the "
            "platform's namespaces is cluster-local, or its namespace has an Istio AuthorizationPolicy that does "
            "not allow everyone.", _serving_authorized, MANDATORY, HIGH, "model-serving",
            "Label it networking.kserve.io/visibility (or networking.knative.dev/visibility): cluster-local, or "
            "create tenants with the Tenant component (its AuthorizationPolicy admits only the tenant and the "
            "gateway)."),
    _policy("stack-kueue-multikueue-admission-checks", "ClusterQueues carry at most one MultiKueue admission "
            "check, never applied per flavor.", _multikueue_checks, MANDATORY, MEDIUM, "multikueue",
            "Use a single MultiKueue AdmissionCheck per ClusterQueue, without onFlavors."),
)
