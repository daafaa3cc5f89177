"""GkeCluster: a private, regional, VPC-native GKE cluster with GPU node pools."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator

from .base import (
    SYSTEM_POOL_NAME,
    SYSTEM_TAINT,
    ClusterComponent,
    CpuPoolSpec,
    GpuPool,
    GpuSharing,
    ManagedClusterArgs,
    NodePoolSpec,
    exec_kubeconfig,
    host_cidrs,
    with_egress,
)

DEFAULT_SYSTEM_POOL = NodePoolSpec(machine_type="e2-standard-4")
GKE_NVIDIA_DIR = "/home/kubernetes/bin/nvidia"
# Lets the GPU Operator's device plugin own the GPUs (NVIDIA's GKE guidance).
NO_GKE_DEVICE_PLUGIN_LABEL = "gke-no-default-nvidia-gpu-device-plugin"
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")
_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def gcp_label_key(tag: str) -> str:
    """How a tag key becomes a GCP label key (`ai-platform:environment` -> `ai-platform-environment`)."""
    return tag.replace(":", "-").lower()


class GkeClusterArgs(ManagedClusterArgs):
    """Inputs of `GkeCluster` (plus the shared `ManagedClusterArgs`)."""

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    """GCP project id."""
    region: str = Field(pattern=r"^[a-z]+-[a-z]+\d+$")
    """GCP region, e.g. us-central1 (the cluster is regional)."""
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    """GKE release channel. @default REGULAR"""
    autoscaling_profile: Literal["BALANCED", "OPTIMIZE_UTILIZATION"] = "OPTIMIZE_UTILIZATION"
    """Cluster autoscaler profile. @default OPTIMIZE_UTILIZATION"""

    @field_validator("tags")
    @classmethod
    def _gcp_labels(cls, tags: dict[str, str]) -> dict[str, str]:
        """GCP labels: lowercase letters, digits, `_` and `-`, at most 63 characters; we do not
        rewrite values silently (an owner's e-mail would become someone else's)."""
        bad = [f"{k}={v!r}" for k, v in tags.items()
               if not _LABEL_KEY.match(gcp_label_key(k)) or not _LABEL_VALUE.match(v.lower())]
        if bad:
            raise ValueError("GCP labels allow only lowercase letters, digits, '_' and '-' (at most 63 characters, "
                             f"keys starting with a letter): {', '.join(bad)}")
        return tags


def subnet_ranges(cidr: str) -> tuple[str, str, str]:
    """(nodes, services, pods) carved from the VPC block: the first quarter for nodes,
    a sixteenth for services, the upper half for pods (a /16 gives 16k nodes IPs and a
    /17 of pod IPs: 128 nodes at GKE's default /24 per node)."""
    net = ipaddress.ip_network(cidr)
    quarters = list(net.subnets(prefixlen_diff=2))
    services = next(quarters[1].subnets(new_prefix=min(net.prefixlen + 4, 28)))
    pods = list(net.subnets(prefixlen_diff=1))[1]
    return str(quarters[0]), str(services), str(pods)


def manager_ranges(cidr: str) -> tuple[str, str, str]:
    """(nodes, services, pods) for a MultiKueue manager sharing the VPC: the three free
    quarters of the second quarter, beside the services range of `subnet_ranges`."""
    net = ipaddress.ip_network(cidr)
    quarters = list(net.subnets(prefixlen_diff=2))
    _, services, nodes, pods = quarters[1].subnets(prefixlen_diff=2)
    return str(nodes), str(services), str(pods)


# A manager sharing the VPC gets a /22 of pod IPs at least: 4 nodes at GKE's /24 per node.
MANAGER_MIN_PREFIX = 18


class GkeCluster(ClusterComponent):
    """A GKE cluster hardened for CIS: private nodes, Workload Identity, shielded nodes,
    Dataplane V2, database encryption with Cloud KMS, no legacy ABAC or client certificates,
    a least-privilege node service account, and one tainted, autoscaled pool per GPU pool."""

    cloud = "gcp"
    type_token = "ai-platform:clusters:GkeCluster"
    # NVIDIA's GKE guidance: Google installs the driver under /home/kubernetes/bin/nvidia.
    gpu_operator_values = {
        "driver": {"enabled": False},
        "toolkit": {"installDir": GKE_NVIDIA_DIR},
        "hostPaths": {"driverInstallDir": GKE_NVIDIA_DIR},
        "cdi": {"enabled": True},
    }
    internal_lb_annotations = {"networking.gke.io/load-balancer-type": "Internal"}
    storage_class = "standard-rwo"
    istio_platform = "gke"
    default_system_machine = DEFAULT_SYSTEM_POOL.machine_type
    system_taints = (SYSTEM_TAINT,)
    # The system pool is for platform pods only: tenants' CPU work needs a pool of its own.
    default_cpu_pools = (CpuPoolSpec(name="general", machine_type=DEFAULT_SYSTEM_POOL.machine_type, min=0, max=4),)
    autoscaler = None  # GKE's own cluster autoscaler scales the pools
    # GKE limits critical priorities to kube-system unless a quota allows them (NVIDIA's GKE
    # install guide creates `gpu-operator-quota` for this).
    critical_pods_need_quota = True

    def __init__(
        self,
        name: str,
        args: GkeClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        network_from: GkeCluster | None = None,
        authorized_egress: pulumi.Input[list[str]] | None = None,
        hosts_manager: bool = False,
    ):
        """`network_from`: run in that cluster's VPC (own subnet from `manager_ranges`, its
        Cloud NAT). `hosts_manager`: a manager will: authorize its node and pod ranges on this
        control plane's (private) endpoint. `authorized_egress`: more CIDRs for the master
        authorized networks (the manager's NAT addresses)."""
        super().__init__(name, args, args.gpu_driver, opts)
        internal = manager_ranges(args.network.cidr) if hosts_manager else ()
        self._authorized = with_egress(
            (*args.endpoint.authorized_networks, *(r for i, r in enumerate(internal) if i != 1)), authorized_egress)
        pools = self.gpu_pools
        self.gcp_provider = gcp.Provider(
            f"{name}-gcp",
            project=args.project,
            region=args.region,
            default_labels={"ai-platform-cluster": args.cluster_name, "managed-by": "pulumi",
                            **{gcp_label_key(k): v.lower() for k, v in args.tags.items()}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._opts = pulumi.ResourceOptions(parent=self, provider=self.gcp_provider)
        if network_from is None:
            self._network(args)
        else:
            self._shared_network(args, network_from)
        self._encryption(args)
        self._cluster(args)
        self.system_node_pool = self._node_pool(
            SYSTEM_POOL_NAME, args.system_pool or DEFAULT_SYSTEM_POOL, labels=self.system_node_labels
        )
        self.gpu_node_pools = {p.name: self._node_pool(p.name, p, labels=p.labels, gpu=p) for p in pools}
        self.cpu_node_pools = {p.name: self._node_pool(p.name, p, labels=p.labels) for p in self.cpu_pools}
        self.nodes_ready.append(self.system_node_pool)
        self.kubeconfig = self._kubeconfig()
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs(
            {
                "cloud": self.cloud,
                "kubernetesVersion": self.kubernetes_version,
                "clusterName": self.gke_cluster.name,
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _network(self, args: GkeClusterArgs) -> None:
        name, o = self.name, self._opts
        self.vpc = gcp.compute.Network(f"{name}-vpc", auto_create_subnetworks=False, opts=o)
        self.subnet = self._subnet(args, *subnet_ranges(args.network.cidr))
        # Private nodes reach registries and Google APIs through Cloud NAT only, from a reserved
        # address: remote API servers this cluster calls (MultiKueue) can allow exactly that.
        router = gcp.compute.Router(f"{name}-router", network=self.vpc.id, region=args.region, opts=o)
        self.nat_address = gcp.compute.Address(
            f"{name}-nat-ip", region=args.region, address_type="EXTERNAL",
            description=f"{args.cluster_name} Cloud NAT egress", opts=o,
        )
        self.egress_cidrs = self.nat_address.address.apply(lambda a: host_cidrs([a]))
        gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="MANUAL_ONLY",
            nat_ips=[self.nat_address.self_link],
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=o,
        )

    def _shared_network(self, args: GkeClusterArgs, host: GkeCluster) -> None:
        """A subnet of its own in `host`'s VPC; its Cloud NAT (all subnets) is our egress."""
        self.vpc = host.vpc
        self.subnet = self._subnet(args, *manager_ranges(host.args.network.cidr))
        self.egress_cidrs = host.egress_cidrs

    def _subnet(self, args: GkeClusterArgs, nodes: str, services: str, pods: str) -> gcp.compute.Subnetwork:
        return gcp.compute.Subnetwork(
            f"{self.name}-nodes",
            network=self.vpc.id,
            region=args.region,
            ip_cidr_range=nodes,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name="pods", ip_cidr_range=pods),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name="services", ip_cidr_range=services),
            ],
            opts=self._opts,
        )

    def _encryption(self, args: GkeClusterArgs) -> None:
        name, o = self.name, self._opts
        protected = pulumi.ResourceOptions.merge(o, pulumi.ResourceOptions(protect=args.protect))
        ring = gcp.kms.KeyRing(f"{name}-keyring", location=args.region, opts=o)
        self.kms_key = gcp.kms.CryptoKey(
            f"{name}-secrets-key",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period="7776000s",  # 90 days
            opts=protected,
        )
        number = gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(provider=self.gcp_provider, parent=self)
        ).number
        # GKE's service agent encrypts etcd secrets with the key.
        self._key_access = gcp.kms.CryptoKeyIAMMember(
            f"{name}-secrets-key-gke",
            crypto_key_id=self.kms_key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=number.apply(lambda n: f"serviceAccount:service-{n}@container-engine-robot.iam.gserviceaccount.com"),
            opts=o,
        )
        self.node_service_account = gcp.serviceaccount.Account(
            f"{name}-nodes-sa",
            account_id=f"{args.cluster_name[:24]}-nodes",
            display_name=f"{args.cluster_name} GKE nodes (least privilege)",
            opts=o,
        )
        self._node_roles = [
            gcp.projects.IAMMember(
                f"{name}-nodes-sa-{role.split('/')[-1].replace('.', '-').lower()}",
                project=args.project,
                role=role,
                member=self.node_service_account.email.apply(lambda e: f"serviceAccount:{e}"),
                opts=o,
            )
            for role in NODE_ROLES
        ]

    def _cluster(self, args: GkeClusterArgs) -> None:
        name, o = self.name, self._opts
        public = args.endpoint.public
        self.gke_cluster = gcp.container.Cluster(
            f"{name}-gke",
            name=args.cluster_name,
            location=args.region,
            min_master_version=args.kubernetes_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=args.release_channel),
            network=self.vpc.id,
            subnetwork=self.subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name="pods", services_secondary_range_name="services"
            ),
            remove_default_node_pool=True,
            initial_node_count=1,
            # The short-lived default pool still must not use the default compute SA.
            node_config=gcp.container.ClusterNodeConfigArgs(
                service_account=self.node_service_account.email,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                shielded_instance_config=gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            ),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True, enable_private_endpoint=not public
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=pulumi.Output.from_input(self._authorized).apply(lambda cidrs: [
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=c, display_name=c)
                    for c in cidrs
                ]),
                gcp_public_cidrs_access_enabled=False,
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{args.project}.svc.id.goog"
            ),
            enable_shielded_nodes=True,
            datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2 enforces NetworkPolicy
            database_encryption=gcp.container.ClusterDatabaseEncryptionArgs(
                state="ENCRYPTED", key_name=self.kms_key.id
            ),
            enable_legacy_abac=False,
            master_auth=gcp.container.ClusterMasterAuthArgs(
                client_certificate_config=gcp.container.ClusterMasterAuthClientCertificateConfigArgs(
                    issue_client_certificate=False
                )
            ),
            cluster_autoscaling=gcp.container.ClusterClusterAutoscalingArgs(
                enabled=False,  # no node auto-provisioning: pools are declared here
                autoscaling_profile=args.autoscaling_profile,
            ),
            deletion_protection=args.protect,
            opts=pulumi.ResourceOptions.merge(
                o,
                pulumi.ResourceOptions(
                    protect=args.protect,
                    depends_on=[self._key_access, *self._node_roles],
                    # GKE replaces the default pool's config once it is removed.
                    ignore_changes=["nodeConfig", "initialNodeCount"],
                ),
            ),
        )
        self.endpoint = self.gke_cluster.endpoint
        self.api_server = self.gke_cluster.endpoint.apply(lambda e: f"https://{e}")
        self.certificate_authority = self.gke_cluster.master_auth.apply(lambda m: m.cluster_ca_certificate)

    def _node_pool(self, pool_name: str, spec, *, labels: dict[str, str], gpu: GpuPool | None = None):
        name, o = self.name, self._opts
        accelerators = None
        taints = [gcp.container.NodePoolNodeConfigTaintArgs(key=t.key, value=t.value, effect=_EFFECTS[t.effect])
                  for t in (self.system_taints if pool_name == SYSTEM_POOL_NAME else getattr(spec, "taints", ()))] or None
        labels = dict(labels)
        if gpu is not None:
            if self.gpu_driver == "gpu-operator":
                labels[NO_GKE_DEVICE_PLUGIN_LABEL] = "true"
            # With the operator, sharing is its device plugin's; GKE's own only otherwise.
            sharing = gpu.sharing if self.gpu_driver == "cloud" else GpuSharing()
            accelerators = [
                gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                    type=gpu.accelerator,
                    count=gpu.gpus,
                    # Google installs the driver in both modes; the operator then skips its own.
                    gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                        gpu_driver_version="DEFAULT"
                    ),
                    gpu_partition_size=sharing.profile.removeprefix("all-") if sharing.mode == "mig" else None,
                    gpu_sharing_config=(
                        gcp.container.NodePoolNodeConfigGuestAcceleratorGpuSharingConfigArgs(
                            gpu_sharing_strategy="TIME_SHARING", max_shared_clients_per_gpu=sharing.replicas
                        )
                        if sharing.mode == "time-slicing"
                        else None
                    ),
                )
            ]
            taints = [
                gcp.container.NodePoolNodeConfigTaintArgs(
                    key=gpu.taint.key, value=gpu.taint.value, effect=_EFFECTS[gpu.taint.effect]
                )
            ]
        return gcp.container.NodePool(
            f"{name}-{pool_name}",
            cluster=self.gke_cluster.id,
            location=self.args.region,
            version=None,  # follows the release channel
            initial_node_count=0 if spec.min == 0 else None,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=spec.min,
                total_max_node_count=spec.max,
                location_policy="BALANCED" if pool_name == SYSTEM_POOL_NAME else "ANY",
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=spec.machine_type,
                disk_size_gb=spec.disk_size_gb,
                disk_type="pd-balanced",
                image_type="COS_CONTAINERD",
                spot=getattr(spec, "capacity", "on-demand") == "spot",
                service_account=self.node_service_account.email,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                labels=labels,
                taints=taints,
                guest_accelerators=accelerators,
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                metadata={"disable-legacy-endpoints": "true"},
            ),
            ignore_node_count_changes=True,
            opts=pulumi.ResourceOptions.merge(
                o,
                # GKE's autoscaler owns the node count.
                pulumi.ResourceOptions(ignore_changes=["nodeCount", "initialNodeCount"]),
            ),
        )

    def _kubeconfig(self) -> pulumi.Output[str]:
        exec_spec = {
            "command": "gke-gcloud-auth-plugin",
            "installHint": "gcloud components install gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
        }
        return pulumi.Output.secret(
            pulumi.Output.all(self.endpoint, self.certificate_authority).apply(
                lambda a: exec_kubeconfig(self.args.cluster_name, f"https://{a[0]}", a[1], exec_spec)
            )
        )
