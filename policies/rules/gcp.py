"""GCP / GKE rules."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from .common import (
    ADVISORY,
    CRITICAL,
    GPU_RESOURCE,
    HIGH,
    LOW,
    MANDATORY,
    MEDIUM,
    cis_gke,
    get,
    items,
    only,
    open_to_internet,
    platform,
    resource_policy,
)

GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"


_cluster = only(GKE_CLUSTER)
# Machine series whose GPUs come with the machine type, no guestAccelerators needed.
GPU_MACHINE_SERIES = ("a2-", "a3-", "a4-", "a4x-", "g2-", "g4-")


def is_gpu_node_pool(props) -> bool:
    config = get(props, "nodeConfig", default={})
    return bool(items(get(config, "guestAccelerators"))) or str(
        get(config, "machineType", default="")).startswith(GPU_MACHINE_SERIES)


def _node_configs(args: ResourceValidationArgs) -> list[tuple[str, dict]]:
    """The node configs this resource sets: a pool's, or the cluster's default pool's."""
    if args.resource_type == GKE_NODE_POOL:
        return [("node pool", get(args.props, "nodeConfig", default={}))]
    if args.resource_type == GKE_CLUSTER and get(args.props, "nodeConfig"):
        return [("default node pool", get(args.props, "nodeConfig", default={}))]
    return []


def _private_nodes(args, report):
    if get(args.props, "privateClusterConfig", "enablePrivateNodes") is not True:
        report("Nodes have public IPs (privateClusterConfig.enablePrivateNodes is not true).", None)


def _endpoint_restricted(args, report):
    if get(args.props, "privateClusterConfig", "enablePrivateEndpoint") is True:
        return
    if get(args.props, "controlPlaneEndpointsConfig", "ipEndpointsConfig", "enabled") is False:
        return  # no IP endpoint: only the DNS endpoint, which IAM authorizes
    networks = get(args.props, "masterAuthorizedNetworksConfig")
    cidrs = [get(b, "cidrBlock", default="") for b in items(get(networks, "cidrBlocks"))]
    if networks is None or not cidrs:
        report("The public control-plane endpoint has no authorized networks.", None)
    elif any(open_to_internet(c) for c in cidrs) or get(networks, "gcpPublicCidrsAccessEnabled") is True:
        report("Authorized networks open the control plane to the internet or to all Google Cloud IPs.", None)


def _workload_identity(args, report):
    if not get(args.props, "workloadIdentityConfig", "workloadPool"):
        report("Workload Identity is off: pods would use the node's service account.", None)


def _shielded_secure_boot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == GKE_CLUSTER and get(args.props, "enableShieldedNodes") is False:
        report("Shielded GKE nodes are disabled.", None)
    for where, config in _node_configs(args):
        if get(config, "shieldedInstanceConfig", "enableSecureBoot") is not True:
            report(f"The {where} does not enable secure boot.", None)


def _network_policy(args, report):
    dataplane_v2 = get(args.props, "datapathProvider") == "ADVANCED_DATAPATH"
    if not dataplane_v2 and get(args.props, "networkPolicy", "enabled") is not True:
        report("NetworkPolicy is not enforced (use Dataplane V2 or enable networkPolicy).", None)


def _legacy_auth_off(args, report):
    if get(args.props, "enableLegacyAbac") is True:
        report("Legacy ABAC is enabled.", None)
    if get(args.props, "masterAuth", "clientCertificateConfig", "issueClientCertificate", default=False) is not False:
        report("Client certificates are issued.", None)


def _database_encryption(args, report):
    enc = get(args.props, "databaseEncryption", default={})
    if get(enc, "state") != "ENCRYPTED" or not get(enc, "keyName"):
        report("Secrets in etcd are not encrypted with a Cloud KMS key (databaseEncryption).", None)


def _metadata_server(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for where, config in _node_configs(args):
        if get(config, "workloadMetadataConfig", "mode") != "GKE_METADATA":
            report(f"The {where} exposes the instance metadata server (workloadMetadataConfig.mode).", None)


def _release_channel(args, report):
    if get(args.props, "releaseChannel", "channel") not in ("RAPID", "REGULAR", "STABLE"):
        report("The cluster is not on a release channel.", None)


def _gpu_pool_tainted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != GKE_NODE_POOL or not is_gpu_node_pool(args.props):
        return
    taints = items(get(args.props, "nodeConfig", "taints"))
    if not any(get(t, "key") == GPU_RESOURCE and get(t, "effect") in ("NO_SCHEDULE", "NO_EXECUTE") for t in taints):
        report(f"GPU node pool has no {GPU_RESOURCE} NoSchedule taint.", None)


def _no_default_service_account(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for where, config in _node_configs(args):
        account = str(get(config, "serviceAccount", default="default"))
        if account == "default" or account.endswith("-compute@developer.gserviceaccount.com"):
            report(f"The {where} runs as the default compute service account.", None)


def _policy(name, description, validate, level, severity, control, remediation, **extra):
    framework = cis_gke(control) if control else platform("gpu-isolation")
    return resource_policy(name, description, validate, level, severity, framework, remediation, **extra)


POLICIES = (
    _policy("gcp-gke-cluster-private-nodes", "GKE nodes have private IPs only.", _cluster(_private_nodes),
            MANDATORY, HIGH, "5.6.5", "Set privateClusterConfig.enablePrivateNodes: true."),
    _policy("gcp-gke-cluster-endpoint-restricted",
            "The GKE control plane is private, or public only to authorized networks without 0.0.0.0/0.",
            _cluster(_endpoint_restricted), MANDATORY, CRITICAL, "5.6.3",
            "Keep endpoint.public false, or list your CIDRs in endpoint.authorizedNetworks."),
    _policy("gcp-gke-cluster-workload-identity", "Workload Identity is enabled.", _cluster(_workload_identity),
            MANDATORY, HIGH, "5.2.2", "Set workloadIdentityConfig.workloadPool to <project>.svc.id.goog."),
    _policy("gcp-gke-cluster-shielded-nodes", "Shielded nodes with secure boot, on the cluster and every pool.",
            _shielded_secure_boot, MANDATORY, MEDIUM, "5.5.7",
            "Set enableShieldedNodes and shieldedInstanceConfig.enableSecureBoot on every node config."),
    _policy("gcp-gke-cluster-network-policy", "NetworkPolicy is enforced (Dataplane V2).", _cluster(_network_policy),
            MANDATORY, HIGH, "5.6.7", "Set datapathProvider: ADVANCED_DATAPATH."),
    _policy("gcp-gke-cluster-legacy-auth-off", "Legacy ABAC and client certificates are off.",
            _cluster(_legacy_auth_off), MANDATORY, HIGH, "5.8.3",
            "Set enableLegacyAbac: false and masterAuth.clientCertificateConfig.issueClientCertificate: false."),
    _policy("gcp-gke-cluster-database-encryption", "etcd secrets are encrypted with a Cloud KMS key.",
            _cluster(_database_encryption), MANDATORY, HIGH, "5.3.1",
            "Set databaseEncryption {state: ENCRYPTED, keyName}; grant GKE's service agent the key."),
    _policy("gcp-gke-nodepool-metadata-server", "Node pools use the GKE metadata server.", _metadata_server,
            MANDATORY, HIGH, "5.4.2", "Set nodeConfig.workloadMetadataConfig.mode: GKE_METADATA."),
    _policy("gcp-gke-cluster-release-channel", "The cluster follows a release channel.", _cluster(_release_channel),
            ADVISORY, LOW, "5.5.4", "Set releaseChannel.channel to REGULAR (or RAPID/STABLE)."),
    _policy("gcp-gke-nodepool-gpu-taint", "Every GPU node pool carries the nvidia.com/gpu NoSchedule taint.",
            _gpu_pool_tainted, MANDATORY, HIGH, None, "Add taint nvidia.com/gpu=present:NO_SCHEDULE to the pool."),
    _policy("gcp-gke-nodepool-service-account", "Nodes do not run as the default compute service account.",
            _no_default_service_account, MANDATORY, HIGH, "5.2.1",
            "Give node configs a dedicated service account with roles/container.defaultNodeServiceAccount."),
)
