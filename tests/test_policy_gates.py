"""Insecure changes are stopped before merge: by the policy pack in the offline plan
(exit 1, naming the policy), or earlier by the config schema (exit 2, naming the key).
The policies also catch code that bypasses the config (components or raw resources
used from another program)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

from components.tenancy import Tenant, TenantSpec
from stacks import plan as plan_mod

from .conftest import FIXTURES, REPO, run_component

GATES = FIXTURES / "policy"


def test_public_endpoint_outside_allowed_cidrs_fails_the_plan():
    result = plan_mod.plan(config_file=GATES / "Pulumi.public-endpoint.yaml",
                           policy_config=REPO / "policies" / "policy-config.prod.json")
    assert result.exit_code == 1
    assert [(v.policy, v.level) for v in result.violations] == [("stack-endpoint-allowed-networks", "mandatory")]
    assert "203.0.113.0/24, outside the policy's allowedCidrs" in result.violations[0].message
    assert "[mandatory] stack-endpoint-allowed-networks" in plan_mod.render(result)
    # The same stack under the default policy config (no CIDR allow list) passes.
    assert plan_mod.plan(config_file=GATES / "Pulumi.public-endpoint.yaml").exit_code == 0


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("tenant-without-gpu-quota", "ai-platform:tenants[0].gpus: required key is missing"),
        ("untainted-gpu-pool", "ai-platform:clusters[0].gpuPools[0].taints: unknown key"),
        ("public-gateway", "ai-platform:addons.mesh.gateway: unknown key"),
    ],
)
def test_mistakes_the_schema_forbids_stop_at_the_config(fixture, key):
    result = plan_mod.plan(config_file=GATES / f"Pulumi.{fixture}.yaml")
    assert result.exit_code == 2
    assert any(key in line for line in result.config_errors), result.config_errors


def test_enforcement_can_be_relaxed_per_policy(tmp_path):
    relaxed = tmp_path / "relaxed.json"
    relaxed.write_text(json.dumps({"stack-endpoint-allowed-networks": {"enforcementLevel": "advisory",
                                                                       "allowedCidrs": ["10.0.0.0/8"]}}))
    result = plan_mod.plan(config_file=GATES / "Pulumi.public-endpoint.yaml", policy_config=relaxed)
    assert result.exit_code == 0 and [v.level for v in result.violations] == ["advisory"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"aws-eks-clster-endpoint-private": "advisory"}, "no such policy"),
        ({"kubernetes-image-pinned": "optional"}, "enforcement level must be one of"),
    ],
)
def test_bad_policy_config_is_a_config_error(tmp_path, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    result = plan_mod.plan("dev", policy_config=path)
    assert result.exit_code == 2 and message in result.config_errors[0]


def _violations(program) -> set[str]:
    return {v.policy for v in plan_mod.run_policies(run_component(program))}


def test_bypassing_the_config_with_an_untainted_gpu_node_group_is_caught():
    def program():
        aws.eks.NodeGroup("rogue", cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                          subnet_ids=["s"], ami_type="AL2023_x86_64_NVIDIA", instance_types=["p4d.24xlarge"],
                          scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=0, max_size=2, desired_size=0))

    assert {"aws-eks-nodegroup-gpu-taint", "stack-gpu-pools-tainted-autoscaled"} <= _violations(program)


def test_bypassing_the_config_with_a_public_load_balancer_is_caught():
    def program():
        k8s.core.v1.Service("public", metadata={"name": "web", "namespace": "research"},
                            spec={"type": "LoadBalancer", "ports": [{"port": 80}]})

    assert "kubernetes-service-internal-lb" in _violations(program)


def test_bypassing_the_config_with_a_tenant_without_quota_is_caught():
    def program():
        provider = k8s.Provider("c-k8s", kubeconfig="{}")
        Tenant("t", TenantSpec(name="ok", gpus=1), "1.33", opts=pulumi.ResourceOptions(provider=provider))
        k8s.core.v1.Namespace("rogue", metadata={"name": "rogue", "labels": {"ai-platform.io/tenant": "rogue"}},
                              opts=pulumi.ResourceOptions(provider=provider))

    found = plan_mod.run_policies(run_component(program))
    assert {(v.policy, v.urn.rsplit("::", 1)[-1]) for v in found} >= {
        ("kubernetes-namespace-gpu-quota", "rogue"), ("stack-tenant-namespace-isolation", "rogue"),
        ("kubernetes-namespace-pod-security", "rogue")}
    assert not any(v.urn.endswith("::t-namespace") for v in found)


def test_bypassing_with_a_privileged_pod_and_a_latest_image_is_caught():
    def program():
        k8s.apps.v1.Deployment("miner", metadata={"name": "m", "namespace": "research"}, spec={
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
                "hostNetwork": True,
                "containers": [{"name": "c", "image": "evil.example.com/miner:latest",
                                "securityContext": {"privileged": True}}]}}})

    assert {"kubernetes-pod-no-privileged", "kubernetes-pod-no-host-namespaces", "kubernetes-pod-seccomp",
            "kubernetes-pod-run-as-non-root", "kubernetes-pod-drop-capabilities", "kubernetes-image-pinned",
            "kubernetes-image-allowed-registry", "kubernetes-pod-no-privilege-escalation"} <= _violations(program)
