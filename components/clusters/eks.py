"""EksCluster: an EKS cluster with GPU node groups, built from pulumi-aws resources."""

from __future__ import annotations

import ipaddress
import json
import re

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator

from ..spec import Spec
from .base import (
    GPU_RESOURCE,
    SYSTEM_POOL_NAME,
    SYSTEM_TAINT,
    AutoscalerBinding,
    ClusterComponent,
    CpuPoolSpec,
    GpuPool,
    ManagedClusterArgs,
    NodePoolSpec,
    exec_kubeconfig,
    host_cidrs,
    with_egress,
)

# Every control-plane log type EKS offers (CIS EKS 2.1.1 asks for all of them).
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
NVIDIA_AMI_TYPE = "AL2023_x86_64_NVIDIA"
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
DEFAULT_SYSTEM_POOL = NodePoolSpec(machine_type="m6i.large")
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_STORAGE_CLASS = "gp3-encrypted"
AUTOSCALER_NAMESPACE = "kube-system"
_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(role|user|assumed-role)/.+$")
_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


class AccessEntrySpec(Spec):
    """An IAM principal allowed into the cluster (EKS access entry)."""

    principal_arn: str
    """IAM role or user ARN."""
    kubernetes_groups: tuple[str, ...] = ()
    """Kubernetes groups the principal joins; tenant `adminGroups`/`viewerGroups` bind to these. @default []"""
    cluster_admin: bool = False
    """Associate AmazonEKSClusterAdminPolicy cluster-wide. @default false"""

    @field_validator("principal_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not _ARN.match(value):
            raise ValueError(f"{value!r} is not an IAM role or user ARN")
        return value


class EksClusterArgs(ManagedClusterArgs):
    """Inputs of `EksCluster` (plus the shared `ManagedClusterArgs`)."""

    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    """AWS region, e.g. us-west-2."""
    access_entries: tuple[AccessEntrySpec, ...] = ()
    """Extra IAM principals with cluster access. @default none (only the creator)"""
    log_retention_days: int = Field(default=90, ge=1, le=3653)
    """Control-plane log retention in CloudWatch. @default 90"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class EksCluster(ClusterComponent):
    """An EKS cluster: private VPC, encrypted secrets, IRSA, a system node group and
    one tainted, autoscaled managed node group per GPU pool."""

    cloud = "aws"
    type_token = "ai-platform:clusters:EksCluster"
    # The NVIDIA AMI ships the driver and the container toolkit.
    gpu_operator_values = {"driver": {"enabled": False}, "toolkit": {"enabled": False}}
    internal_lb_annotations = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    storage_class = EBS_STORAGE_CLASS
    default_system_machine = DEFAULT_SYSTEM_POOL.machine_type
    system_taints = (SYSTEM_TAINT,)
    # The system pool is for platform pods only: tenants' CPU work needs a pool of its own.
    default_cpu_pools = (CpuPoolSpec(name="general", machine_type=DEFAULT_SYSTEM_POOL.machine_type, min=0, max=4),)

    def __init__(
        self,
        name: str,
        args: EksClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        network_from: EksCluster | None = None,
        authorized_egress: pulumi.Input[list[str]] | None = None,
        hosts_manager: bool = False,
    ):
        """`network_from`: run in that cluster's VPC, subnets and NAT (the MultiKueue manager
        beside its primary) and open that cluster's API server to this one's nodes.
        `authorized_egress`: more CIDRs for a public endpoint's allow list (the manager's egress).
        `hosts_manager`: another cluster will share this one's network (nothing to do on EKS:
        the sharer opens the way itself)."""
        super().__init__(name, args, args.gpu_driver, opts)
        self._authorized_egress = authorized_egress
        pools = self.gpu_pools
        zones = args.network.zones or 2
        nat = args.network.nat_gateways or "single"

        self.aws_provider = aws.Provider(
            f"{name}-aws",
            region=args.region,
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={"ai-platform:cluster": args.cluster_name, "managed-by": "pulumi", **args.tags}
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._opts = pulumi.ResourceOptions(parent=self, provider=self.aws_provider)
        invoke = pulumi.InvokeOutputOptions(provider=self.aws_provider, parent=self)
        self._partition = aws.get_partition_output(opts=invoke).partition

        if network_from is None:
            self._network(args, zones, nat, invoke)
        else:
            self.vpc = network_from.vpc
            self.public_subnets = network_from.public_subnets
            self.private_subnets = network_from.private_subnets
            self.nat_eips = network_from.nat_eips
        self.egress_cidrs = pulumi.Output.all(*[e.public_ip for e in self.nat_eips]).apply(host_cidrs)
        self._control_plane(args)
        if network_from is not None:
            # EKS's private endpoint admits only its cluster security group: let our nodes in.
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-to-{network_from.name}",
                security_group_id=network_from.eks_cluster.vpc_config.cluster_security_group_id,
                referenced_security_group_id=self.eks_cluster.vpc_config.cluster_security_group_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"{args.cluster_name} (MultiKueue manager) to the {network_from.name} API server",
                opts=self._opts,
            )
        self._node_role()
        system = args.system_pool or DEFAULT_SYSTEM_POOL
        self.system_node_group = self._node_group(
            SYSTEM_POOL_NAME,
            instance_type=system.machine_type,
            ami_type=SYSTEM_AMI_TYPE,
            capacity="on-demand",
            min_size=system.min,
            max_size=system.max,
            disk_size_gb=system.disk_size_gb,
            labels=self.system_node_labels,
            taints=self.system_taints,
        )
        self.gpu_node_groups: dict[str, aws.eks.NodeGroup] = {}
        for pool in pools:
            group = self._node_group(
                pool.name,
                instance_type=pool.machine_type,
                ami_type=NVIDIA_AMI_TYPE,
                capacity=pool.capacity,
                min_size=pool.min,
                max_size=pool.max,
                disk_size_gb=pool.disk_size_gb,
                labels=pool.labels,
                taints=(pool.taint,),
            )
            self.gpu_node_groups[pool.name] = group
            self._scale_from_zero_tags(pool, group)
        self.cpu_node_groups: dict[str, aws.eks.NodeGroup] = {
            pool.name: self._node_group(
                pool.name, instance_type=pool.machine_type, ami_type=SYSTEM_AMI_TYPE, capacity=pool.capacity,
                min_size=pool.min, max_size=pool.max, disk_size_gb=pool.disk_size_gb, labels=pool.labels,
                taints=pool.taints,
            )
            for pool in self.cpu_pools
        }
        self._network_policy()
        self.nodes_ready += [self.system_node_group, self.vpc_cni_addon]

        self._autoscaler_role(args)
        self.kubeconfig = self._kubeconfig(args)
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._storage()
        self.register_outputs(
            {
                "cloud": self.cloud,
                "kubernetesVersion": self.kubernetes_version,
                "clusterName": self.eks_cluster.name,
                "endpoint": self.endpoint,
                "oidcProviderArn": self.oidc_provider.arn,
                "kubeconfig": self.kubeconfig,
            }
        )

    # -- networking ---------------------------------------------------------------------

    def _network(self, args: EksClusterArgs, zones: int, nat: str, invoke) -> None:
        name, o = self.name, self._opts
        cidr = ipaddress.ip_network(args.network.cidr)
        blocks = list(cidr.subnets(prefixlen_diff=3))
        # Private /19s (of a /16) for nodes and pods; small public /24s only hold NAT gateways.
        private_cidrs = [str(b) for b in blocks[:zones]]
        public_cidrs = [str(b) for b in list(blocks[-1].subnets(prefixlen_diff=5))[:zones]]
        az_names = aws.get_availability_zones_output(
            state="available",
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=invoke,
        ).names

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{args.cluster_name}"},
            opts=o,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, opts=o)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=o,
        )
        self.public_subnets: list[aws.ec2.Subnet] = []
        self.private_subnets: list[aws.ec2.Subnet] = []
        nat_gateways: list[aws.ec2.NatGateway] = []
        self.nat_eips: list[aws.ec2.Eip] = []
        for i in range(zones):
            az = az_names.apply(lambda names, i=i: _zone(names, i, zones))
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=self.vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.cluster_name}-public-{i}", "kubernetes.io/role/elb": "1"},
                opts=o,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}-rta", subnet_id=public.id, route_table_id=public_rt.id, opts=o
            )
            self.public_subnets.append(public)
            if i == 0 or nat == "per-zone":
                eip = aws.ec2.Eip(f"{name}-nat-{i}-eip", domain="vpc", opts=o)
                self.nat_eips.append(eip)
                nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=public.id, opts=o
                    )
                )
            private = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=self.vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.cluster_name}-private-{i}", "kubernetes.io/role/internal-elb": "1"},
                opts=o,
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{i}-rt",
                vpc_id=self.vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(
                        cidr_block="0.0.0.0/0", nat_gateway_id=nat_gateways[-1].id
                    )
                ],
                opts=o,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta", subnet_id=private.id, route_table_id=private_rt.id, opts=o
            )
            self.private_subnets.append(private)

    # -- control plane ------------------------------------------------------------------

    def _control_plane(self, args: EksClusterArgs) -> None:
        name, o = self.name, self._opts
        protected = pulumi.ResourceOptions.merge(o, pulumi.ResourceOptions(protect=args.protect))
        self.kms_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"EKS secrets envelope encryption for {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=protected,
        )
        aws.kms.Alias(
            f"{name}-secrets-key-alias",
            name=f"alias/{args.cluster_name}-secrets",
            target_key_id=self.kms_key.key_id,
            opts=o,
        )
        self.cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=json.dumps(_assume("eks.amazonaws.com", tag_session=True)),
            opts=o,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-role-eks",
                role=self.cluster_role.name,
                policy_arn=self._partition.apply(lambda p: f"arn:{p}:iam::aws:policy/AmazonEKSClusterPolicy"),
                opts=o,
            ),
            # The cluster role needs the key for envelope encryption of secrets.
            aws.iam.RolePolicy(
                f"{name}-cluster-role-kms",
                role=self.cluster_role.id,
                policy=self.kms_key.arn.apply(
                    lambda arn: json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                                    "Resource": arn,
                                }
                            ],
                        }
                    )
                ),
                opts=o,
            ),
        ]
        # EKS creates this log group itself without retention; own it so retention is set.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            opts=o,
        )
        endpoint = args.endpoint
        self.eks_cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=self.cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[s.id for s in self.private_subnets],
                endpoint_private_access=True,
                endpoint_public_access=endpoint.public,
                public_access_cidrs=with_egress(endpoint.authorized_networks, self._authorized_egress)
                if endpoint.public else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.kms_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The identity running `pulumi up` must manage the Kubernetes objects below.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            deletion_protection=args.protect,
            opts=pulumi.ResourceOptions.merge(
                protected, pulumi.ResourceOptions(depends_on=[*attachments, log_group])
            ),
        )
        self.endpoint = self.eks_cluster.endpoint
        self.api_server = self.eks_cluster.endpoint
        self.certificate_authority = self.eks_cluster.certificate_authority.apply(lambda ca: ca.data)
        self.oidc_issuer = self.eks_cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=o,
        )
        self.access_entries: list[pulumi.Resource] = []
        for entry in args.access_entries:
            slug = _slug(entry.principal_arn.split(":", 5)[-1])
            access = aws.eks.AccessEntry(
                f"{name}-access-{slug}",
                cluster_name=self.eks_cluster.name,
                principal_arn=entry.principal_arn,
                kubernetes_groups=list(entry.kubernetes_groups) or None,
                type="STANDARD",
                opts=o,
            )
            self.access_entries.append(access)
            if entry.cluster_admin:
                self.access_entries.append(
                    aws.eks.AccessPolicyAssociation(
                        f"{name}-access-{slug}-admin",
                        cluster_name=self.eks_cluster.name,
                        principal_arn=entry.principal_arn,
                        policy_arn=self._partition.apply(
                            lambda p: f"arn:{p}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
                        ),
                        access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                        opts=pulumi.ResourceOptions.merge(o, pulumi.ResourceOptions(depends_on=[access])),
                    )
                )

    # -- nodes --------------------------------------------------------------------------

    def _node_role(self) -> None:
        name, o = self.name, self._opts
        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(_assume("ec2.amazonaws.com")),
            opts=o,
        )
        self._node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-role-{_slug(policy)}",
                role=self.node_role.name,
                policy_arn=self._partition.apply(lambda p, policy=policy: f"arn:{p}:iam::aws:policy/{policy}"),
                opts=o,
            )
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
        ]

    def _node_group(
        self,
        pool: str,
        *,
        instance_type: str,
        ami_type: str,
        capacity: str,
        min_size: int,
        max_size: int,
        disk_size_gb: int,
        labels: dict[str, str],
        taints: tuple,
    ) -> aws.eks.NodeGroup:
        name, o = self.name, self._opts
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool}-lt",
            description=f"{self.args.cluster_name} {pool} nodes: IMDSv2 only, encrypted root volume",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # 1 hop: pods cannot borrow the node role through IMDS; they use IRSA.
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=disk_size_gb,
                        volume_type="gp3",
                        # The account's aws/ebs key: a customer key would need a grant for the
                        # Auto Scaling service-linked role, or nodes fail to launch.
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            update_default_version=True,
            opts=o,
        )
        return aws.eks.NodeGroup(
            f"{name}-{pool}",
            cluster_name=self.eks_cluster.name,
            version=self.args.kubernetes_version,
            node_role_arn=self.node_role.arn,
            subnet_ids=[s.id for s in self.private_subnets],
            instance_types=[instance_type],
            ami_type=ami_type,
            capacity_type="SPOT" if capacity == "spot" else "ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=min_size, max_size=max_size, desired_size=max(min_size, 0)
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=labels,
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=_EFFECTS[t.effect]) for t in taints
            ],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            opts=pulumi.ResourceOptions.merge(
                o,
                pulumi.ResourceOptions(
                    # The cluster autoscaler owns the desired size; `pulumi up` must not reset it.
                    ignore_changes=["scalingConfig.desiredSize"],
                    depends_on=self._node_policies,
                ),
            ),
        )

    def _scale_from_zero_tags(self, pool: GpuPool, group: aws.eks.NodeGroup) -> None:
        """Tag the node group's Auto Scaling group itself: EKS does not copy node group
        labels and taints there, and the autoscaler reads them to scale up from zero."""
        prefix = "k8s.io/cluster-autoscaler"
        template = f"{prefix}/node-template"
        capacity_type = "SPOT" if pool.capacity == "spot" else "ON_DEMAND"
        tags = {
            "enabled": (f"{prefix}/enabled", "true"),
            "owned": (f"{prefix}/{self.args.cluster_name}", "owned"),
            "label-capacity-type": (f"{template}/label/eks.amazonaws.com/capacityType", capacity_type),
            "taint-gpu": (f"{template}/taint/{pool.taint.key}", f"{pool.taint.value}:{pool.taint.effect}"),
            # What the node advertises once its device plugin runs: slices with sharing.
            "resources-gpu": (f"{template}/resources/{GPU_RESOURCE}", str(pool.devices)),
        }
        for key, value in pool.labels.items():
            tags[f"label-{_slug(key.split('/')[-1])}"] = (f"{template}/label/{key}", value)
        asg_name = group.resources.apply(lambda r: r[0].autoscaling_groups[0].name)
        for slug, (key, value) in tags.items():
            aws.autoscaling.Tag(
                f"{self.name}-{pool.name}-asg-{slug}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=self._opts,
            )

    def _network_policy(self) -> None:
        """The VPC CNI enforces NetworkPolicy only with `enableNetworkPolicy` (its network
        policy agent, eBPF): without it the tenants' default-deny is stored and ignored.
        EKS user guide, "Restrict pod network traffic with Kubernetes network policies"."""
        self.vpc_cni_addon = aws.eks.Addon(
            f"{self.name}-vpc-cni",
            cluster_name=self.eks_cluster.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            # Adopt the self-managed CNI that every new cluster starts with.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=self._opts,
        )

    # -- autoscaler and access ----------------------------------------------------------

    def _irsa_role(self, role: str, namespace: str, service_account: str) -> aws.iam.Role:
        """An IAM role only the given Kubernetes service account can assume (IRSA)."""
        issuer_host = self.oidc_issuer.apply(lambda url: url.removeprefix("https://"))
        trust = pulumi.Output.all(self.oidc_provider.arn, issuer_host).apply(
            lambda a: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": a[0]},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{a[1]}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                    f"{a[1]}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            )
        )
        return aws.iam.Role(f"{self.name}-{role}-role", assume_role_policy=trust, opts=self._opts)

    def _autoscaler_role(self, args: EksClusterArgs) -> None:
        name, o = self.name, self._opts
        self.autoscaler_role = self._irsa_role("autoscaler", AUTOSCALER_NAMESPACE, AUTOSCALER_SERVICE_ACCOUNT)
        aws.iam.RolePolicy(
            f"{name}-autoscaler-policy",
            role=self.autoscaler_role.id,
            policy=self.eks_cluster.arn.apply(lambda arn: json.dumps(autoscaler_policy(arn, args.cluster_name))),
            opts=o,
        )
        self.autoscaler = AutoscalerBinding(
            values={
                "cloudProvider": "aws",
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster_name},
                "rbac": {
                    "serviceAccount": {
                        "create": True,
                        "name": AUTOSCALER_SERVICE_ACCOUNT,
                        "annotations": {"eks.amazonaws.com/role-arn": self.autoscaler_role.arn},
                    }
                },
            }
        )

    def _storage(self) -> None:
        """The EBS CSI driver (EKS add-on, IRSA) and an encrypted gp3 StorageClass, so
        platform volumes (Prometheus, Grafana) can be provisioned."""
        name, o = self.name, self._opts
        role = self._irsa_role("ebs-csi", "kube-system", EBS_CSI_SERVICE_ACCOUNT)
        attach = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy",
            role=role.name,
            policy_arn=self._partition.apply(lambda p: f"arn:{p}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"),
            opts=o,
        )
        self.ebs_csi_addon = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=self.eks_cluster.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions.merge(
                o, pulumi.ResourceOptions(depends_on=[attach, self.system_node_group])
            ),
        )
        self.storage_class_resource = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=EBS_STORAGE_CLASS),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.k8s_provider),
        )
        self.storage_ready.append(self.ebs_csi_addon)

    def _kubeconfig(self, args: EksClusterArgs) -> pulumi.Output[str]:
        exec_spec = {
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", args.cluster_name, "--region", args.region, "--output", "json"],
        }
        return pulumi.Output.secret(
            pulumi.Output.all(self.eks_cluster.endpoint, self.certificate_authority).apply(
                lambda a: exec_kubeconfig(args.cluster_name, a[0], a[1], exec_spec)
            )
        )


def _zone(names: list[str], i: int, wanted: int) -> str:
    if len(names) < wanted:
        raise ValueError(f"the region offers {len(names)} availability zones, network.zones asks for {wanted}")
    return names[i]


def _assume(service: str, tag_session: bool = False) -> dict:
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}],
    }


def autoscaler_policy(cluster_arn: str, cluster_name: str) -> dict:
    """The cluster-autoscaler's documented least-privilege policy for auto-discovery,
    with writes limited to this cluster's groups and DescribeNodegroup to its node groups."""
    nodegroups = cluster_arn.replace(":cluster/", ":nodegroup/", 1) + "/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Discover",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                ],
                "Resource": "*",
            },
            {"Sid": "NodeGroupTemplates", "Effect": "Allow", "Action": ["eks:DescribeNodegroup"],
             "Resource": nodegroups},
            {
                "Sid": "ScaleOwnGroups",
                "Effect": "Allow",
                "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                "Resource": "*",
                "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
            },
        ],
    }


