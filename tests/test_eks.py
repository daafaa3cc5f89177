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
    assert exec_["command"] == "aws" and exec_["args"][:4] == ["eks", "get-token", "--cluster-name", "acme-test"]
    assert "token" not in json.dumps(config["users"][0]["user"]).replace("get-token", "")


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
