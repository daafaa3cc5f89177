"""EksCluster under mocks: the properties that keep GPU nodes isolated, autoscaled and
the control plane private and encrypted."""

from __future__ import annotations

import json

import pytest

from components.clusters.base import GpuPoolSpec
from components.clusters.eks import EksCluster, EksClusterArgs
from stacks.engine import is_secret

from .conftest import inputs, run_component

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG_TAG = "aws:autoscaling/tag:Tag"


def build(**overrides):
    args = {
        "cluster_name": "acme-test",
        "region": "eu-west-1",
        "gpu_pools": (
            GpuPoolSpec(name="a100", machine_type="p4d.24xlarge", capacity="on-demand", min=0, max=4),
            GpuPoolSpec(name="l4", machine_type="g6.xlarge", capacity="spot", min=0, max=10),
        ),
        **overrides,
    }
    holder = {}

    def program():
        holder["cluster"] = EksCluster("primary", EksClusterArgs(**args))

    run = run_component(program)
    return run, holder["cluster"]


@pytest.fixture(scope="module")
def default():
    return build()


def groups(run):
    return {r.name: r for r in run.by_type(NODE_GROUP)}


def test_the_component_type_token_names_its_class(default):
    # URNs (and so the state of every child) hang on it: a rename replaces the whole cluster.
    run, cluster = default
    (reg,) = [r for r in run.resources if not r.custom and r.name == cluster._name]
    assert reg.type == f"ai-platform:clusters:{type(cluster).__name__}"


def test_gpu_groups_are_tainted_and_use_the_nvidia_ami(default):
    run, _ = default
    for name in ("primary-a100", "primary-l4"):
        ng = inputs(groups(run)[name])
        assert ng["amiType"] == "AL2023_x86_64_NVIDIA"
        assert ng["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    system = inputs(groups(run)["primary-system"])
    assert system["amiType"] == "AL2023_x86_64_STANDARD"
    # The system pool is the platform's: tenants' CPU work goes to the `general` pool.
    assert system["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    general = inputs(groups(run)["primary-general"])
    assert not general.get("taints") and general["scalingConfig"]["minSize"] == 0


def test_gpu_groups_carry_pool_model_and_capacity_labels(default):
    run, _ = default
    ng = inputs(groups(run)["primary-l4"])
    assert ng["labels"] == {
        "ai-platform.io/pool": "l4",
        "ai-platform.io/gpu-model": "l4",
        "ai-platform.io/capacity": "spot",
        # The autoscaler's GPU label: a booting node without GPUs yet is not "empty".
        "k8s.amazonaws.com/accelerator": "nvidia-l4",
    }
    assert ng["capacityType"] == "SPOT"
    assert inputs(groups(run)["primary-a100"])["capacityType"] == "ON_DEMAND"


def test_gpu_groups_scale_from_zero_within_bounds(default):
    run, _ = default
    assert inputs(groups(run)["primary-l4"])["scalingConfig"] == {"minSize": 0, "maxSize": 10, "desiredSize": 0}
    assert inputs(groups(run)["primary-a100"])["scalingConfig"]["maxSize"] == 4


def test_desired_size_is_left_to_the_autoscaler(default):
    run, _ = default
    for ng in groups(run).values():
        assert ng.ignore_changes == ["scalingConfig.desiredSize"]


def test_asg_carries_scale_from_zero_tags_with_gpu_count(default):
    run, _ = default
    tags = {}
    for r in run.by_type(ASG_TAG):
        t = inputs(r)
        tags.setdefault(r.name.split("-asg-")[0], {})[t["tag"]["key"]] = (t["tag"]["value"], t["autoscalingGroupName"])
    a100 = tags["primary-a100"]
    template = "k8s.io/cluster-autoscaler/node-template"
    assert a100[f"{template}/resources/nvidia.com/gpu"][0] == "8"
    assert tags["primary-l4"][f"{template}/resources/nvidia.com/gpu"][0] == "1"
    assert a100[f"{template}/taint/nvidia.com/gpu"][0] == "true:NoSchedule"
    assert a100[f"{template}/label/ai-platform.io/gpu-model"][0] == "a100"
    assert a100[f"{template}/label/eks.amazonaws.com/capacityType"][0] == "ON_DEMAND"
    # EKS labels spot nodes eks.amazonaws.com/capacityType=SPOT: pods that select spot scale the spot pool from zero.
    assert tags["primary-l4"][f"{template}/label/eks.amazonaws.com/capacityType"][0] == "SPOT"
    assert a100["k8s.io/cluster-autoscaler/enabled"][0] == "true"
    assert a100["k8s.io/cluster-autoscaler/acme-test"][0] == "owned"
    # On the node group's own Auto Scaling group, not on the node group.
    asg = inputs(groups(run)["primary-a100"])
    assert "tags" not in asg or not any(k.startswith(template) for k in asg["tags"])
    # Every tag targets the ASG the node group itself reports.
    group_asg = groups(run)["primary-a100"].outputs["resources"][0]["autoscalingGroups"][0]["name"]
    assert {v[1] for v in a100.values()} == {group_asg}
    assert all(not inputs(r)["tag"]["propagateAtLaunch"] for r in run.by_type(ASG_TAG))


def test_secrets_encryption_uses_the_rotating_kms_key(default):
    run, _ = default
    key = run.one("aws:kms/key:Key", "primary-secrets-key")
    key_arn = key.outputs["arn"]
    assert inputs(key)["enableKeyRotation"] is True
    eks = inputs(run.one("aws:eks/cluster:Cluster", "primary-eks"))
    assert eks["encryptionConfig"] == {"provider": {"keyArn": key_arn}, "resources": ["secrets"]}
    assert key.urn in run.one("aws:eks/cluster:Cluster", "primary-eks").dependencies


def test_control_plane_logs_and_access_entries_mode(default):
    run, _ = default
    eks = inputs(run.one("aws:eks/cluster:Cluster", "primary-eks"))
    assert sorted(eks["enabledClusterLogTypes"]) == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert eks["accessConfig"]["authenticationMode"] == "API"


def test_endpoint_is_private_by_default(default):
    run, _ = default
    vpc = inputs(run.one("aws:eks/cluster:Cluster", "primary-eks"))["vpcConfig"]
    assert vpc["endpointPublicAccess"] is False
    assert vpc["endpointPrivateAccess"] is True
    assert "publicAccessCidrs" not in vpc


def test_public_endpoint_only_for_the_allow_list():
    from components.clusters.base import EndpointSpec

    run, _ = build(endpoint=EndpointSpec(public=True, authorized_networks=("203.0.113.0/24",)), gpu_pools=())
    vpc = inputs(run.one("aws:eks/cluster:Cluster", "primary-eks"))["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True and vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_nodes_sit_in_private_subnets_across_zones(default):
    run, _ = default
    private = {r.outputs["availabilityZone"] for r in run.by_type("aws:ec2/subnet:Subnet") if "private" in r.name}
    assert len(private) == 2
    subnets = run.by_type("aws:ec2/subnet:Subnet")
    private_urns = {r.urn for r in subnets if "private" in r.name}
    public_urns = {r.urn for r in subnets if "public" in r.name}
    eks = run.one("aws:eks/cluster:Cluster", "primary-eks")
    for resource in (*groups(run).values(), eks):
        assert private_urns <= set(resource.dependencies) and not public_urns & set(resource.dependencies)
    cluster_subnets = inputs(eks)["vpcConfig"]["subnetIds"]
    assert len(set(cluster_subnets)) == 2
    assert all(inputs(ng)["subnetIds"] == cluster_subnets for ng in groups(run).values())
    assert all(not inputs(r)["mapPublicIpOnLaunch"] for r in run.by_type("aws:ec2/subnet:Subnet"))


def test_three_zones_and_per_zone_nat():
    from components.clusters.base import NetworkSpec

    run, _ = build(network=NetworkSpec(zones=3, nat_gateways="per-zone"), gpu_pools=())
    assert len(run.by_type("aws:ec2/natGateway:NatGateway")) == 3
    zones = {inputs(r)["availabilityZone"] for r in run.by_type("aws:ec2/subnet:Subnet") if "private" in r.name}
    assert zones == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}


def test_launch_templates_require_imdsv2_and_encrypt_root_volumes(default):
    run, _ = default
    templates = run.by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(templates) == len(groups(run)) == 4  # system, general and two GPU groups
    for lt in templates:
        p = inputs(lt)
        assert p["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
        ebs = p["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true"
    ng = inputs(groups(run)["primary-a100"])
    lt = run.one("aws:ec2/launchTemplate:LaunchTemplate", "primary-a100-lt")
    assert ng["launchTemplate"]["id"] == lt.outputs.get("id", ng["launchTemplate"]["id"])
    assert "remoteAccess" not in ng


def test_kubeconfig_is_secret_and_uses_aws_eks_get_token(default):
    run, _ = default
    provider = run.one("pulumi:providers:kubernetes", "primary-k8s")
    assert is_secret(provider.inputs["kubeconfig"])
    config = json.loads(inputs(provider)["kubeconfig"])
    exec_ = config["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws" and exec_["args"][:2] == ["eks", "get-token"]
    # The token is for this cluster in its own region (not the CLI's default one), printed as the
    # ExecCredential JSON the client reads.
    options = dict(zip(exec_["args"][2::2], exec_["args"][3::2], strict=True))
    assert options == {"--cluster-name": "acme-test", "--region": "eu-west-1", "--output": "json"}
    assert "token" not in json.dumps(config["users"][0]["user"]).replace("get-token", "")


def test_the_autoscaler_can_discover_and_template_its_own_node_groups_only(default):
    from . import iam

    run, _ = default
    policy = inputs(run.one("aws:iam/rolePolicy:RolePolicy", "primary-autoscaler-policy"))["policy"]
    # The reads the autoscaler's AWS provider documents for auto-discovery (cluster-autoscaler
    # cloudprovider/aws README), plus DescribeTags, which finds the groups by their tags.
    for action in ("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                   "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
                   "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
                   "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements"):
        assert iam.allows(policy, action, resource="*"), action
    # Scale-from-zero templates come from DescribeNodegroup, on this cluster's node groups only.
    own = "arn:aws:eks:eu-west-1:123456789012:nodegroup/acme-test/primary-l4/0f3c"
    assert iam.allows(policy, "eks:DescribeNodegroup", resource=own)
    assert not iam.allows(policy, "eks:DescribeNodegroup",
                          resource="arn:aws:eks:eu-west-1:123456789012:nodegroup/other/ng/1a2b")
    owned = {"aws:ResourceTag/k8s.io/cluster-autoscaler/acme-test": "owned"}
    asg = "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:uuid:autoScalingGroupName/eks-l4"
    assert iam.allows(policy, "autoscaling:SetDesiredCapacity", resource=asg, context=owned)
    assert not iam.allows(policy, "autoscaling:SetDesiredCapacity", resource=asg, context={})


def test_control_plane_log_retention_bounds():
    from pydantic import ValidationError

    for days in (1, 3653):
        assert EksClusterArgs(cluster_name="acme-test", region="eu-west-1", log_retention_days=days).log_retention_days == days
    for days in (0, 3654):
        with pytest.raises(ValidationError):
            EksClusterArgs(cluster_name="acme-test", region="eu-west-1", log_retention_days=days)


def test_the_autoscaler_runs_in_the_clusters_region_as_the_service_account_its_role_trusts(default):
    run, cluster = default
    values = cluster.autoscaler.values
    assert values.get("cloudProvider", "aws") == "aws"  # the chart's default, spelled out or not
    assert values["awsRegion"] == "eu-west-1"  # the chart's default is empty: the SDK would guess
    assert values["autoDiscovery"]["clusterName"] == "acme-test"
    sa = values["rbac"]["serviceAccount"]
    assert sa["create"] is True
    # IRSA: the pod gets the role through this annotation, and the role trusts exactly this account.
    assert sa["annotations"]["eks.amazonaws.com/role-arn"] is cluster.autoscaler_role.arn
    trust = inputs(run.one("aws:iam/role:Role", "primary-autoscaler-role"))["assumeRolePolicy"]
    assert f"system:serviceaccount:kube-system:{sa['name']}" in trust


def test_add_ons_take_over_what_a_new_cluster_starts_with_and_keep_our_settings(default):
    # A new cluster runs a self-managed VPC CNI: creating the add-on over it needs OVERWRITE (with NONE it may fail on
    # the conflict), and OVERWRITE on update keeps enableNetworkPolicy against drift. EKS add-on docs.
    run, _ = default
    for addon in run.by_type("aws:eks/addon:Addon"):
        a = inputs(addon)
        assert (a["resolveConflictsOnCreate"], a["resolveConflictsOnUpdate"]) == ("OVERWRITE", "OVERWRITE"), a
    assert {inputs(a)["addonName"] for a in run.by_type("aws:eks/addon:Addon")} >= {"vpc-cni", "aws-ebs-csi-driver"}


def test_autoscaler_irsa_role_is_least_privilege(default):
    run, _ = default
    role = inputs(run.one("aws:iam/role:Role", "primary-autoscaler-role"))
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    conditions = trust["Condition"]["StringEquals"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert any(v == "system:serviceaccount:kube-system:cluster-autoscaler" for v in conditions.values())
    policy = json.loads(inputs(run.one("aws:iam/rolePolicy:RolePolicy", "primary-autoscaler-policy"))["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["NodeGroupTemplates"]["Action"] == ["eks:DescribeNodegroup"]
    assert by_sid["NodeGroupTemplates"]["Resource"].startswith("arn:aws:eks:eu-west-1:123456789012:nodegroup/acme-test/")
    writes = by_sid["ScaleOwnGroups"]
    assert set(writes["Action"]) == {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}
    assert writes["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/acme-test": "owned"}}
    assert not any(a.endswith("*") for s in policy["Statement"] for a in s["Action"])


def test_oidc_provider_uses_the_cluster_issuer(default):
    run, _ = default
    eks = run.one("aws:eks/cluster:Cluster", "primary-eks")
    oidc = inputs(run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "primary-oidc"))
    assert oidc["url"] == eks.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]


def test_protect_covers_cluster_and_key():
    run, _ = build(protect=True, gpu_pools=())
    assert run.one("aws:eks/cluster:Cluster", "primary-eks").protect
    assert run.one("aws:kms/key:Key", "primary-secrets-key").protect
    assert inputs(run.one("aws:eks/cluster:Cluster", "primary-eks"))["deletionProtection"] is True


def test_unprotected_by_default(default):
    run, _ = default
    assert not any(r.protect for r in run.resources)


def test_bad_pool_fails_before_anything_is_registered():
    registered = {}

    def program():
        try:
            EksCluster("primary", EksClusterArgs(
                cluster_name="acme-x", region="us-west-2",
                gpu_pools=(GpuPoolSpec(name="a", machine_type="g6.xlarge", gpus=4),),
            ))
        except ValueError as exc:
            registered["error"] = str(exc)

    run = run_component(program)
    assert "g6.xlarge has 1 GPU(s), not 4" in registered["error"]
    assert run.resources == []


def test_access_entries_map_iam_roles_to_tenant_groups():
    from components.clusters.eks import AccessEntrySpec

    run, _ = build(gpu_pools=(), access_entries=(
        AccessEntrySpec(principal_arn="arn:aws:iam::123456789012:role/research", kubernetes_groups=("research-admins",)),
        AccessEntrySpec(principal_arn="arn:aws:iam::123456789012:role/ops", cluster_admin=True),
    ))
    entries = {inputs(r)["principalArn"]: inputs(r) for r in run.by_type("aws:eks/accessEntry:AccessEntry")}
    assert entries["arn:aws:iam::123456789012:role/research"]["kubernetesGroups"] == ["research-admins"]
    (assoc,) = run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert inputs(assoc)["policyArn"].endswith(":cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert inputs(assoc)["principalArn"] == "arn:aws:iam::123456789012:role/ops"
    # STANDARD is the type for people and CI; the EC2/Fargate types would put the principal in system:nodes.
    assert {e["type"] for e in entries.values()} == {"STANDARD"}


def test_only_the_autoscaler_service_account_with_the_sts_audience_assumes_its_role(default):
    from . import iam

    run, _ = default
    trust = inputs(run.one("aws:iam/role:Role", "primary-autoscaler-role"))["assumeRolePolicy"]
    provider = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "primary-oidc")
    issuer = inputs(provider)["url"].removeprefix("https://")
    oidc_arn = provider.outputs["arn"]

    def assume(sub: str, aud: str | None = "sts.amazonaws.com", federated: str = oidc_arn) -> bool:
        context = {f"{issuer}:sub": sub, **({f"{issuer}:aud": aud} if aud else {})}
        return iam.allows(trust, "sts:AssumeRoleWithWebIdentity", principal=federated, context=context)

    autoscaler = "system:serviceaccount:kube-system:cluster-autoscaler"
    assert assume(autoscaler)
    # A token minted for another audience (another OIDC client) must not open the role.
    assert not assume(autoscaler, aud="https://kubernetes.default.svc") and not assume(autoscaler, aud=None)
    assert not assume("system:serviceaccount:research:cluster-autoscaler")
    assert not assume("system:serviceaccount:kube-system:default")
    assert not assume(autoscaler, federated="arn:aws:iam::123456789012:oidc-provider/other")
    assert not iam.allows(trust, "sts:AssumeRole", principal=oidc_arn,
                          context={f"{issuer}:sub": autoscaler, f"{issuer}:aud": "sts.amazonaws.com"})


def test_the_ebs_csi_add_on_can_assume_its_role_through_the_service_account_it_runs_as(default):
    from . import iam

    run, _ = default
    addon = inputs(run.one("aws:eks/addon:Addon", "primary-ebs-csi"))
    (role,) = [r for r in run.by_type("aws:iam/role:Role") if r.outputs.get("arn") == addon["serviceAccountRoleArn"]]
    issuer = inputs(run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "primary-oidc"))["url"]
    issuer = issuer.removeprefix("https://")
    oidc_arn = run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "primary-oidc").outputs["arn"]

    def assume(sub: str) -> bool:
        return iam.allows(inputs(role)["assumeRolePolicy"], "sts:AssumeRoleWithWebIdentity", principal=oidc_arn,
                          context={f"{issuer}:sub": sub, f"{issuer}:aud": "sts.amazonaws.com"})

    # The add-on's controller runs as kube-system/ebs-csi-controller-sa (AWS EBS CSI driver docs).
    assert addon["addonName"] == "aws-ebs-csi-driver"
    assert assume("system:serviceaccount:kube-system:ebs-csi-controller-sa")
    assert not assume("system:serviceaccount:kube-system:default")


def test_nodes_join_run_the_cni_and_pull_images_with_the_policies_eks_documents(default):
    # https://docs.aws.amazon.com/eks/latest/userguide/create-node-role.html
    run, _ = default
    node_role = run.one("aws:iam/role:Role", "primary-node-role")
    attached = {inputs(a)["policyArn"] for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if inputs(a)["role"] == node_role.outputs["name"]}
    assert attached == {f"arn:aws:iam::aws:policy/{p}" for p in
                        ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")}


def test_each_pool_runs_on_its_own_machine_type(default):
    # An empty instanceTypes would give EKS's default (t3.medium): no GPU at all.
    run, _ = default
    assert inputs(groups(run)["primary-a100"])["instanceTypes"] == ["p4d.24xlarge"]
    assert inputs(groups(run)["primary-l4"])["instanceTypes"] == ["g6.xlarge"]
    assert inputs(groups(run)["primary-general"])["scalingConfig"]["maxSize"] == 4  # README: 0 to 4 nodes


def test_eks_internal_load_balancers_and_node_image_are_what_the_rest_of_the_platform_expects(default):
    from policies.rules.kubernetes import INTERNAL_LB_ANNOTATIONS

    _, cluster = default
    # The mesh's gateway asks for an internal NLB with these annotations: the policy pack must see them as internal.
    assert any(v in INTERNAL_LB_ANNOTATIONS.get(k, ()) for k, v in cluster.internal_lb_annotations.items())
    # The NVIDIA AMI brings its own driver and container toolkit: the GPU Operator (whose chart installs both
    # unless told not to) must leave them alone or the node ends up with two drivers.
    values = cluster.gpu_operator_values
    assert values.get("driver", {}).get("enabled", True) is False
    assert values.get("toolkit", {}).get("enabled", True) is False


def test_the_cluster_role_can_envelope_encrypt_with_its_key_and_no_other(default):
    from . import iam

    run, _ = default
    key_arn = run.one("aws:kms/key:Key", "primary-secrets-key").outputs["arn"]
    policy = inputs(run.one("aws:iam/rolePolicy:RolePolicy", "primary-cluster-role-kms"))["policy"]
    # EKS encrypts new secrets and decrypts them on every read (and checks the key when created).
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"):
        assert iam.allows(policy, action, key_arn), action
    assert not iam.allows(policy, "kms:Decrypt", key_arn.replace(key_arn.rsplit("/", 1)[-1], "other"))
    assert not iam.allows(policy, "kms:ScheduleKeyDeletion", key_arn)
    assert not iam.allows(policy, "kms:PutKeyPolicy", key_arn)
    role = run.one("aws:iam/role:Role", "primary-cluster-role")
    attached = inputs(run.one("aws:iam/rolePolicy:RolePolicy", "primary-cluster-role-kms"))["role"]
    assert attached == role.id


def _routes(run):
    """private subnet name -> (its zone, the zone of the NAT its default route uses)."""
    subnets = {r.id: r for r in run.by_type("aws:ec2/subnet:Subnet")}
    nats = {r.id: r for r in run.by_type("aws:ec2/natGateway:NatGateway")}
    tables = {r.id: r for r in run.by_type("aws:ec2/routeTable:RouteTable")}
    out = {}
    for assoc in run.by_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        subnet = subnets[inputs(assoc)["subnetId"]]
        if "private" not in subnet.name:
            continue
        (route,) = [r for r in inputs(tables[inputs(assoc)["routeTableId"]])["routes"] if r["cidrBlock"] == "0.0.0.0/0"]
        nat = nats[route["natGatewayId"]]
        nat_subnet = subnets[inputs(nat)["subnetId"]]
        assert "public" in nat_subnet.name
        # The NAT reaches the internet only if its own subnet routes 0.0.0.0/0 to the internet gateway.
        (public_assoc,) = [a for a in run.by_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
                           if inputs(a)["subnetId"] == nat_subnet.id]
        public_routes = inputs(tables[inputs(public_assoc)["routeTableId"]])["routes"]
        igw = run.one("aws:ec2/internetGateway:InternetGateway", "primary-igw").id
        assert {"cidrBlock": "0.0.0.0/0", "gatewayId": igw} in public_routes
        out[subnet.name] = (inputs(subnet)["availabilityZone"], inputs(nat_subnet)["availabilityZone"])
    return out


def test_per_zone_nat_keeps_each_zones_egress_in_its_zone():
    from components.clusters.base import NetworkSpec

    run, _ = build(network=NetworkSpec(zones=3, nat_gateways="per-zone"), gpu_pools=())
    routes = _routes(run)
    assert len(routes) == 3 and all(zone == nat_zone for zone, nat_zone in routes.values())
    # The control plane may be reached from each NAT address.
    assert len(run.by_type("aws:ec2/eip:Eip")) == 3


def test_a_single_nat_serves_every_zone_by_default(default):
    run, _ = default
    routes = _routes(run)
    assert len(routes) == 2 and len({nat_zone for _, nat_zone in routes.values()}) == 1


def test_load_balancers_land_in_the_subnets_their_scheme_needs(default):
    # The AWS load balancer controller and the in-tree provider pick subnets by these role tags
    # (https://docs.aws.amazon.com/eks/latest/userguide/network-load-balancing.html): internal
    # ones in private subnets, internet-facing ones in public subnets.
    run, _ = default
    subnets = run.by_type("aws:ec2/subnet:Subnet")

    def discovered(scheme: str) -> set[str]:
        tag = {"internal": "kubernetes.io/role/internal-elb", "internet-facing": "kubernetes.io/role/elb"}[scheme]
        return {s.name for s in subnets if (inputs(s).get("tags") or {}).get(tag) in ("1", "")}

    assert discovered("internal") == {s.name for s in subnets if "private" in s.name}
    assert discovered("internet-facing") == {s.name for s in subnets if "public" in s.name}
    assert len(discovered("internal")) == 2


def test_every_iam_document_is_one_iam_accepts(default):
    from . import iam

    run, _ = default
    documents = [(r.name, inputs(r)["assumeRolePolicy"], True) for r in run.by_type("aws:iam/role:Role")]
    documents += [(r.name, inputs(r)["policy"], False) for r in run.by_type("aws:iam/rolePolicy:RolePolicy")]
    assert len(documents) >= 6
    for name, doc, trust in documents:
        assert not iam.problems(doc, trust), (name, iam.problems(doc, trust))


def test_a_deleted_secrets_key_stays_recoverable_for_the_longest_window_aws_allows(default):
    # KMS takes 7 to 30 days (https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html):
    # the longest gives time to notice a cluster whose secrets would become unreadable.
    run, _ = default
    assert inputs(run.one("aws:kms/key:Key", "primary-secrets-key"))["deletionWindowInDays"] == 30


def test_what_eks_itself_requires_of_the_vpc_roles_and_creator(default):
    from . import iam

    run, _ = default
    # Nodes cannot register with a private endpoint without VPC DNS
    # (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html).
    vpc = inputs(run.one("aws:ec2/vpc:Vpc", "primary-vpc"))
    assert vpc["enableDnsHostnames"] is True and vpc["enableDnsSupport"] is True
    # The cluster role trust EKS documents: AssumeRole and TagSession for eks.amazonaws.com only
    # (https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html).
    trust = inputs(run.one("aws:iam/role:Role", "primary-cluster-role"))["assumeRolePolicy"]
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert iam.allows(trust, action, principal="eks.amazonaws.com"), action
    assert not iam.allows(trust, "sts:AssumeRole", principal="ec2.amazonaws.com")
    # The identity running `pulumi up` must be able to install the add-ons on the new cluster.
    access = inputs(run.one("aws:eks/cluster:Cluster", "primary-eks"))["accessConfig"]
    assert access["bootstrapClusterCreatorAdminPermissions"] is True
    # EKS refuses to create a cluster whose role lacks AmazonEKSClusterPolicy: attach it first.
    cluster_role = run.one("aws:iam/role:Role", "primary-cluster-role")
    (attachment,) = [r for r in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                     if inputs(r)["role"] == cluster_role.outputs["name"]]
    assert inputs(attachment)["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    assert attachment.urn in run.one("aws:eks/cluster:Cluster", "primary-eks").dependencies
    # Nodes are EC2 instances: their role is EC2's to assume, without session tags (only EKS needs those).
    node_trust = inputs(run.one("aws:iam/role:Role", "primary-node-role"))["assumeRolePolicy"]
    assert iam.allows(node_trust, "sts:AssumeRole", principal="ec2.amazonaws.com")
    assert not iam.allows(node_trust, "sts:TagSession", principal="ec2.amazonaws.com")
    assert not iam.allows(node_trust, "sts:AssumeRole", principal="eks.amazonaws.com")


def test_add_ons_wait_for_system_nodes_and_the_cni(default):
    # Helm releases wait on `nodes_ready`: without a node to run on or a CNI to give pods an IP they time out.
    _, cluster = default
    assert cluster.system_node_group in cluster.nodes_ready and cluster.vpc_cni_addon in cluster.nodes_ready


def test_default_pools_use_an_x86_general_purpose_type_the_standard_ami_runs(default):
    import re

    run, _ = default
    for name in ("primary-system", "primary-general"):
        ng = inputs(groups(run)[name])
        (instance_type,) = ng["instanceTypes"]
        assert ng["amiType"] == "AL2023_x86_64_STANDARD"
        # An EC2 type name (family.size) whose family is not Graviton (a `g` after the generation).
        family = re.fullmatch(r"([a-z]+\d+[a-z-]*)\.(medium|large|\d*xlarge|metal)", instance_type)
        assert family and not re.search(r"\dg", family.group(1)), instance_type


def test_a_region_with_exactly_the_zones_asked_for_is_enough():
    from components.clusters.eks import _zone

    assert [_zone(["a", "b", "c"], i, 3) for i in range(3)] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="offers 2 availability zones, network.zones asks for 3"):
        _zone(["a", "b"], 0, 3)


def test_node_upgrades_replace_one_node_at_a_time(default):
    # Every pool rolls node by node: a GPU pool never loses all its running jobs at once.
    run, _ = default
    for ng in groups(run).values():
        assert inputs(ng)["updateConfig"] == {"maxUnavailable": 1}, ng.name


def test_volumes_are_encrypted_gp3_created_in_the_pods_zone_and_can_grow(default):
    run, _ = default
    sc = inputs(run.one("kubernetes:storage.k8s.io/v1:StorageClass", "primary-gp3"))
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["parameters"] == {"type": "gp3", "encrypted": "true"}
    # An EBS volume lives in one zone: create it where the pod was scheduled.
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["allowVolumeExpansion"] is True and sc["reclaimPolicy"] == "Delete"


def test_private_subnets_leave_room_for_a_vpc_ip_per_pod(default):
    import ipaddress

    # The VPC CNI gives every pod a VPC address: each zone's node subnet holds thousands, the NAT subnets few.
    run, _ = default
    vpc = ipaddress.ip_network(inputs(run.one("aws:ec2/vpc:Vpc", "primary-vpc"))["cidrBlock"])
    subnets = {s.name: ipaddress.ip_network(inputs(s)["cidrBlock"]) for s in run.by_type("aws:ec2/subnet:Subnet")}
    assert all(net.subnet_of(vpc) for net in subnets.values())
    assert all(net.num_addresses >= 8192 for name, net in subnets.items() if "private" in name)
    nets = list(subnets.values())
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_the_zone_lookup_is_one_ec2_accepts():
    import pulumi_aws as aws

    from stacks.engine import run_program

    def lookup(**query):
        return run_program(lambda: aws.get_availability_zones_output(**query).names.apply(lambda n: n), stack="test").error

    assert lookup(state="available") is None
    assert lookup(state="availble") is not None
    assert lookup(filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opted"])]) is not None


def test_every_aws_resource_is_tagged_with_its_cluster_and_the_users_tags():
    # Cost allocation and ownership: the provider's default tags reach every AWS resource it creates.
    run, _ = build(gpu_pools=(), tags={"team": "ml-platform", "cost-center": "42"})
    (provider,) = [r for r in run.resources if r.type == "pulumi:providers:aws"]
    tags = inputs(provider)["defaultTags"]
    tags = (json.loads(tags) if isinstance(tags, str) else tags)["tags"]
    assert tags == {"ai-platform:cluster": "acme-test", "managed-by": "pulumi", "team": "ml-platform",
                    "cost-center": "42"}
    aws_resources = [r for r in run.resources if r.type.startswith("aws:")]
    assert aws_resources and all(r.provider_urn == provider.urn for r in aws_resources)


def test_nat_addresses_are_vpc_elastic_ips(default):
    # EC2-Classic is gone: an Elastic IP for a NAT gateway must be allocated in the VPC domain.
    run, _ = default
    eips = run.by_type("aws:ec2/eip:Eip")
    assert eips and all(inputs(e)["domain"] == "vpc" for e in eips)
