"""AksCluster: an AKS cluster with Entra ID + Azure RBAC and GPU agent pools."""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Literal

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s
import yaml
from pydantic import Field, field_validator

from .base import (
    SYSTEM_POOL_NAME,
    SYSTEM_TAINT,
    ClusterComponent,
    CpuPool,
    CpuPoolSpec,
    GpuPool,
    GpuPoolSpec,
    ManagedClusterArgs,
    NodePoolSpec,
    exec_kubeconfig,
    host_cidrs,
    with_egress,
)

DEFAULT_SYSTEM_POOL = NodePoolSpec(machine_type="Standard_D4s_v5")
AUDIT_LOG_CATEGORIES = ("kube-audit-admin", "guard")
# Built-in role "Azure Kubernetes Service RBAC Cluster Admin".
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
# Entra ID server application of AKS, the audience kubelogin asks tokens for.
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AGENT_POOL_NAME = r"^[a-z][a-z0-9]{0,11}$"
# Auto-upgrade channels that move the cluster to a new Kubernetes minor version.
MINOR_UPGRADE_CHANNELS = ("stable", "rapid")
# Characters Azure refuses in tag names.
_AZURE_TAG_FORBIDDEN = set('<>%&\\?/')
_UUID = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"


class AksClusterArgs(ManagedClusterArgs):
    """Inputs of `AksCluster` (plus the shared `ManagedClusterArgs`)."""

    region: str = Field(pattern=r"^[a-z]+[a-z0-9]*$")
    """Azure location, e.g. westeurope."""
    resource_group: str | None = None
    """Existing resource group to use. @default a new `<cluster>-rg`"""
    network_policy: Literal["azure", "cilium"] = "cilium"
    """NetworkPolicy engine (cilium also switches the dataplane to Cilium). @default cilium"""
    admin_group_object_ids: tuple[str, ...] = ()
    """Entra ID groups that administer the cluster. @default none"""
    upgrade_channel: Literal["patch", "stable", "rapid", "node-image"] = "stable"
    """AKS auto-upgrade channel. @default stable"""
    sku_tier: Literal["Free", "Standard", "Premium"] = "Standard"
    """Control-plane tier (Standard carries the uptime SLA). @default Standard"""
    log_retention_days: int = Field(default=90, ge=30, le=730)
    """Log Analytics retention for audit logs. @default 90"""

    @field_validator("gpu_pools", "cpu_pools")
    @classmethod
    def _agent_pool_names(cls, pools: tuple[GpuPoolSpec | CpuPoolSpec, ...] | None):
        bad = [p.name for p in pools or () if not re.match(AGENT_POOL_NAME, p.name)]
        if bad:
            raise ValueError(f"AKS agent pool names must be 1-12 lower-case letters and digits: {bad}")
        return pools

    @field_validator("tags")
    @classmethod
    def _azure_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        bad = [k for k in tags if set(k) & _AZURE_TAG_FORBIDDEN or len(k) > 512 or len(tags[k]) > 256]
        if bad:
            raise ValueError(f"Azure tag names may not contain < > % & \\ ? / (and are at most 512 characters, "
                             f"values 256): {bad}")
        return tags

    @field_validator("admin_group_object_ids")
    @classmethod
    def _object_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        bad = [i for i in ids if not re.match(_UUID, i)]
        if bad:
            raise ValueError(f"not Entra ID object ids (UUIDs): {bad}")
        return ids


def manager_subnet(cidr: str) -> str:
    """The subnet of a MultiKueue manager sharing the VNet: the first quarter of the half
    that the cluster's own node subnet leaves free (pods use the overlay range)."""
    upper = list(ipaddress.ip_network(cidr).subnets(prefixlen_diff=1))[1]
    return str(next(upper.subnets(prefixlen_diff=2)))


def _ip_reference(resource_id: str) -> tuple[str, str]:
    """(resource group, name) of a public IP resource id."""
    parts = resource_id.split("/")
    return parts[parts.index("resourceGroups") + 1], parts[-1]


def _server_and_ca(kubeconfig_b64: str) -> tuple[str, str]:
    doc = yaml.safe_load(base64.b64decode(kubeconfig_b64))
    cluster = doc["clusters"][0]["cluster"]
    return cluster["server"], cluster["certificate-authority-data"]


class AksCluster(ClusterComponent):
    """An AKS cluster: Entra ID with Azure RBAC, local accounts off, OIDC issuer and
    workload identity, network policy, a private API server or authorized IP ranges,
    auto-upgrade, audit logs to Log Analytics, a tainted zonal system pool and one
    tainted, autoscaled user pool per GPU pool."""

    cloud = "azure"
    type_token = "ai-platform:clusters:AksCluster"
    # AKS leaves the driver to the operator ("gpuProfile.driver: None" on the pools).
    gpu_operator_values = {"driver": {"enabled": True}, "toolkit": {"enabled": True}}
    internal_lb_annotations = {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}
    storage_class = "managed-csi"
    default_system_machine = DEFAULT_SYSTEM_POOL.machine_type
    autoscaler = None  # AKS's own cluster autoscaler scales the pools
    system_taints = (SYSTEM_TAINT,)
    # The system pool is for platform pods only: tenants' CPU work needs a pool of its own.
    default_cpu_pools = (CpuPoolSpec(name="general", machine_type=DEFAULT_SYSTEM_POOL.machine_type, min=0, max=4),)

    def __init__(
        self,
        name: str,
        args: AksClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        network_from: AksCluster | None = None,
        authorized_egress: pulumi.Input[list[str]] | None = None,
        hosts_manager: bool = False,
    ):
        """`network_from`: put the nodes in a subnet of that cluster's VNet (the MultiKueue
        manager beside its primary: a private API server is resolvable and reachable in its
        VNet). `authorized_egress`: more ranges for a public API server's allow list.
        `hosts_manager`: nothing to do on AKS (the VNet's second half is kept free for it)."""
        super().__init__(name, args, args.gpu_driver, opts)
        self._authorized_egress = authorized_egress
        pools = self.gpu_pools
        self.azure_provider = azure.Provider(f"{name}-azure", location=args.region,
                                             opts=pulumi.ResourceOptions(parent=self))
        self._opts = pulumi.ResourceOptions(parent=self, provider=self.azure_provider)
        self._invoke = pulumi.InvokeOutputOptions(provider=self.azure_provider, parent=self)
        self.tags = {"ai-platform-cluster": args.cluster_name, "managed-by": "pulumi", **args.tags}
        zones = [str(z) for z in range(1, (args.network.zones or 2) + 1)]

        if args.resource_group:
            self.resource_group_name = pulumi.Output.from_input(args.resource_group)
        else:
            group = azure.resources.ResourceGroup(
                f"{name}-rg", resource_group_name=f"{args.cluster_name}-rg", location=args.region,
                tags=self.tags, opts=self._opts,
            )
            self.resource_group_name = group.name
        if network_from is None:
            self._network(args)
        else:
            self.vnet = network_from.vnet
            self.subnet = azure.network.Subnet(
                f"{name}-nodes",
                resource_group_name=network_from.resource_group_name,
                virtual_network_name=network_from.vnet.name,
                address_prefix=manager_subnet(network_from.args.network.cidr),
                default_outbound_access=False,
                opts=self._opts,
            )
        self._cluster(args, zones)
        self.egress_cidrs = self._egress()
        self.gpu_agent_pools = {p.name: self._gpu_pool(p, zones) for p in pools}
        self.cpu_agent_pools = {p.name: self._cpu_pool(p, zones) for p in self.cpu_pools}
        self.nodes_ready.append(self.aks_cluster)
        self._audit_logs(args)
        self.kubeconfig = self._kubeconfig()
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._admin_role]),
        )
        self.register_outputs(
            {
                "cloud": self.cloud,
                "kubernetesVersion": self.kubernetes_version,
                "clusterName": self.aks_cluster.name,
                "endpoint": self.endpoint,
                "oidcIssuer": self.oidc_issuer,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _network(self, args: AksClusterArgs) -> None:
        name, o = self.name, self._opts
        nodes = list(ipaddress.ip_network(args.network.cidr).subnets(prefixlen_diff=1))[0]
        self.vnet = azure.network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=self.resource_group_name,
            address_space=azure.network.AddressSpaceArgs(address_prefixes=[args.network.cidr]),
            tags=self.tags,
            # Subnets are their own resources; inline ones would fight them.
            opts=pulumi.ResourceOptions.merge(o, pulumi.ResourceOptions(ignore_changes=["subnets"])),
        )
        self.subnet = azure.network.Subnet(
            f"{name}-nodes",
            resource_group_name=self.resource_group_name,
            virtual_network_name=self.vnet.name,
            address_prefix=str(nodes),
            default_outbound_access=False,
            opts=o,
        )

    def _cluster(self, args: AksClusterArgs, zones: list[str]) -> None:
        name, o = self.name, self._opts
        system = args.system_pool or DEFAULT_SYSTEM_POOL
        public = args.endpoint.public
        cilium = args.network_policy == "cilium"
        self.aks_cluster = azure.containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=args.cluster_name,
            resource_group_name=self.resource_group_name,
            location=args.region,
            dns_prefix=args.cluster_name,
            kubernetes_version=args.kubernetes_version,
            identity=azure.containerservice.ManagedClusterIdentityArgs(type="SystemAssigned"),
            sku=azure.containerservice.ManagedClusterSKUArgs(name="Base", tier=args.sku_tier),
            enable_rbac=True,
            aad_profile=azure.containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=list(args.admin_group_object_ids) or None,
            ),
            disable_local_accounts=True,
            oidc_issuer_profile=azure.containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=azure.containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=azure.containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True)
            ),
            network_profile=azure.containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_policy=args.network_policy,
                network_dataplane="cilium" if cilium else "azure",
                # Outside the VNet so pods and services never collide with node IPs.
                pod_cidr="192.168.0.0/16",
                service_cidr="172.16.0.0/16",
                dns_service_ip="172.16.0.10",
                load_balancer_sku="standard",
            ),
            api_server_access_profile=azure.containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=not public,
                authorized_ip_ranges=with_egress(args.endpoint.authorized_networks, self._authorized_egress)
                if public else None,
            ),
            auto_upgrade_profile=azure.containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=args.upgrade_channel, node_os_upgrade_channel="NodeImage"
            ),
            auto_scaler_profile=azure.containerservice.ManagedClusterPropertiesAutoScalerProfileArgs(
                expander="least-waste",
                balance_similar_node_groups="true",
                skip_nodes_with_system_pods="false",
                scale_down_unneeded_time="10m",
                max_node_provision_time="15m",
            ),
            agent_pool_profiles=[
                azure.containerservice.ManagedClusterAgentPoolProfileArgs(
                    name=SYSTEM_POOL_NAME,
                    mode="System",
                    vm_size=system.machine_type,
                    os_type="Linux",
                    os_sku="Ubuntu",
                    os_disk_size_gb=system.disk_size_gb,
                    type="VirtualMachineScaleSets",
                    enable_auto_scaling=True,
                    count=system.min,
                    min_count=system.min,
                    max_count=system.max,
                    availability_zones=zones,
                    node_taints=[str(SYSTEM_TAINT)],
                    node_labels=self.system_node_labels,
                    vnet_subnet_id=self.subnet.id,
                    enable_node_public_ip=False,
                )
            ],
            tags=self.tags,
            opts=pulumi.ResourceOptions.merge(
                o,
                pulumi.ResourceOptions(
                    protect=args.protect,
                    # AKS's autoscaler owns the system pool's node count; with a channel that
                    # upgrades minors (stable, rapid) AKS owns the version: a later `pulumi up`
                    # must not try to go back to the configured one (AKS refuses downgrades).
                    ignore_changes=["agentPoolProfiles[0].count",
                                    *(["kubernetesVersion"] if args.upgrade_channel in MINOR_UPGRADE_CHANNELS else [])],
                ),
            ),
        )
        self.endpoint = self.aks_cluster.private_fqdn if not public else self.aks_cluster.fqdn
        self.oidc_issuer = self.aks_cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else None)
        client = azure.authorization.get_client_config_output(opts=self._invoke)
        # The identity running `pulumi up` manages the Kubernetes objects (no local accounts).
        self._admin_role = azure.authorization.RoleAssignment(
            f"{name}-deployer-admin",
            principal_id=client.object_id,
            role_definition_id=client.subscription_id.apply(
                lambda s: f"/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{AKS_RBAC_CLUSTER_ADMIN}"
            ),
            scope=self.aks_cluster.id,
            opts=o,
        )

    def _user_pool(self, pool: GpuPool | CpuPool, zones: list[str], **extra) -> azure.containerservice.AgentPool:
        """An autoscaled user pool; AKS puts the spot taint on spot pools itself, and
        declaring it (in `pool.taints`) keeps `pulumi up` from diffing."""
        spot = pool.capacity == "spot"
        return azure.containerservice.AgentPool(
            f"{self.name}-{pool.name}",
            resource_group_name=self.resource_group_name,
            resource_name_=self.aks_cluster.name,
            agent_pool_name=pool.name,
            mode="User",
            vm_size=pool.machine_type,
            os_type="Linux",
            os_sku="Ubuntu",
            os_disk_size_gb=pool.disk_size_gb,
            type="VirtualMachineScaleSets",
            enable_auto_scaling=True,
            count=pool.min,
            min_count=pool.min,
            max_count=pool.max,
            availability_zones=zones,
            node_taints=[str(t) for t in pool.taints] or None,
            node_labels=pool.labels,
            vnet_subnet_id=self.subnet.id,
            enable_node_public_ip=False,
            scale_set_priority="Spot" if spot else "Regular",
            scale_set_eviction_policy="Delete" if spot else None,
            spot_max_price=-1 if spot else None,
            tags=self.tags,
            **extra,
            opts=pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(ignore_changes=["count"])),
        )

    def _gpu_pool(self, pool: GpuPool, zones: list[str]) -> azure.containerservice.AgentPool:
        # With the operator, its MIG manager partitions the GPUs; AKS's own only otherwise.
        mig = pool.sharing.profile if pool.sharing.mode == "mig" and self.gpu_driver == "cloud" else None
        return self._user_pool(
            pool, zones,
            # "None" leaves the driver to the GPU Operator (API 2025-xx, azure-native 3.x).
            gpu_profile=azure.containerservice.GPUProfileArgs(
                driver="None" if self.gpu_driver == "gpu-operator" else "Install"
            ),
            gpu_instance_profile=f"MIG{mig.removeprefix('all-').split('g')[0]}g" if mig else None,
        )

    def _cpu_pool(self, pool: CpuPool, zones: list[str]) -> azure.containerservice.AgentPool:
        return self._user_pool(pool, zones)

    def _audit_logs(self, args: AksClusterArgs) -> None:
        name, o = self.name, self._opts
        self.log_workspace = azure.operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=self.resource_group_name,
            sku=azure.operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.log_retention_days,
            tags=self.tags,
            opts=o,
        )
        self.audit_diagnostics = azure.monitor.DiagnosticSetting(
            f"{name}-audit",
            name="ai-platform-audit",
            resource_uri=self.aks_cluster.id,
            workspace_id=self.log_workspace.id,
            log_analytics_destination_type="Dedicated",
            logs=[azure.monitor.DiagnosticsLogSettingsArgs(category=c, enabled=True) for c in AUDIT_LOG_CATEGORIES],
            opts=o,
        )

    def _egress(self) -> pulumi.Output[list[str]]:
        """The load balancer's outbound addresses, which AKS creates and reports itself."""
        refs = self.aks_cluster.network_profile.apply(
            lambda p: [r.id for r in ((p.load_balancer_profile.effective_outbound_ips or [])
                                      if p and p.load_balancer_profile else []) if r.id])

        def addresses(ids: list[str]) -> pulumi.Output[list[str]]:
            ips = [azure.network.get_public_ip_address_output(
                resource_group_name=group, public_ip_address_name=ip_name, opts=self._invoke).ip_address
                for group, ip_name in map(_ip_reference, ids)]
            return pulumi.Output.all(*ips).apply(lambda found: host_cidrs([str(a) for a in found if a]))

        return refs.apply(addresses)

    def _kubeconfig(self) -> pulumi.Output[str]:
        creds = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=self.resource_group_name, resource_name=self.aks_cluster.name, opts=self._invoke
        )
        server_ca = creds.kubeconfigs.apply(lambda k: _server_and_ca(k[0].value))
        self.certificate_authority = pulumi.Output.secret(server_ca.apply(lambda sc: sc[1]))
        self.api_server = server_ca.apply(lambda sc: sc[0])
        # kubelogin with the Azure CLI login: non-interactive, like `pulumi up` itself.
        exec_spec = {"command": "kubelogin", "args": ["get-token", "--login", "azurecli", "--server-id", AKS_AAD_SERVER_ID]}
        return pulumi.Output.secret(
            server_ca.apply(lambda sc: exec_kubeconfig(self.args.cluster_name, sc[0], sc[1], exec_spec))
        )
