"""The offline engine end to end: dev and prod plan clean, the report keeps its
contract, and the checks really catch what they claim to."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from stacks import plan as plan_mod
from stacks import validate
from stacks.engine import plain

from .conftest import FIXTURES, inputs, run_component


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_plans_clean(stack, dev_plan, prod_plan):
    result = {"dev": dev_plan, "prod": prod_plan}[stack]
    assert result.config_errors == []
    assert result.violations == [], result.violations
    assert result.findings == [], result.findings
    assert result.exit_code == 0
    objects = [r for r in result.run.resources if r.custom and validate.is_kubernetes_object(r.type)]
    checked = result.checked
    assert checked["kubernetesObjects"] + checked["customResources"] + checked["customResourcesSkipped"] == len(objects)
    assert result.checked["kubernetesObjects"] > 0
    # Custom resources are checked against the pinned CRDs only where the upstream data is.
    assert (result.checked["customResources"] > 0) == (validate.upstream_dir() is not None)


def test_dev_plan_shows_the_gpu_cluster_autoscaler_and_tenants(dev_plan):
    run = dev_plan.run
    (eks,) = run.by_type("aws:eks/cluster:Cluster")
    assert inputs(eks)["name"] == "ai-platform-dev-primary"
    gpu = [inputs(g) for g in run.by_type("aws:eks/nodeGroup:NodeGroup") if inputs(g)["amiType"].endswith("NVIDIA")]
    assert len(gpu) == 1
    assert gpu[0]["capacityType"] == "SPOT" and gpu[0]["scalingConfig"]["minSize"] == 0
    (release,) = [r for r in run.by_type("kubernetes:helm.sh/v3:Release") if inputs(r)["chart"] == "cluster-autoscaler"]
    assert inputs(release)["version"] == "9.59.0"
    assert inputs(release)["values"]["autoDiscovery"]["clusterName"] == "ai-platform-dev-primary"
    tenants = {inputs(n)["metadata"]["name"] for n in run.by_type("kubernetes:core/v1:Namespace")
               if "ai-platform.io/tenant" in inputs(n)["metadata"]["labels"]}
    assert tenants == {"research", "recsys"}
    text = plan_mod.render(dev_plan)
    assert "nvidia.com/gpu=true:NO_SCHEDULE" in text and "Result: PASS" in text


def test_prod_plan_spreads_three_zones_two_gpu_pools_three_tenants_and_protects(prod_plan):
    run = prod_plan.run
    primary = [r for r in run.resources if r.name.startswith("primary-")]
    zones = {inputs(s)["availabilityZone"] for s in primary if s.type == "aws:ec2/subnet:Subnet"}
    assert len(zones) == 3
    models = {inputs(g)["labels"].get("ai-platform.io/gpu-model") for g in primary
              if g.type == "aws:eks/nodeGroup:NodeGroup"}
    assert models == {None, "a100", "l4"}
    # Three tenants on each of primary, burst and the dedicated manager.
    assert len([n for n in run.by_type("kubernetes:core/v1:Namespace")
                if "ai-platform.io/tenant" in inputs(n)["metadata"]["labels"]]) == 9
    protected = {(r.type, r.name) for r in run.resources if r.protect}
    assert protected == {(t, f"{c}-{n}") for c, t, n in (
        ("primary", "aws:eks/cluster:Cluster", "eks"), ("primary", "aws:kms/key:Key", "secrets-key"),
        ("manager", "aws:eks/cluster:Cluster", "eks"), ("manager", "aws:kms/key:Key", "secrets-key"),
        ("burst", "gcp:container/cluster:Cluster", "gke"), ("burst", "gcp:kms/cryptoKey:CryptoKey", "secrets-key"),
        ("primary", "kubernetes:helm.sh/v3:Release", "observability-release"),
        ("burst", "kubernetes:helm.sh/v3:Release", "observability-release"))}


def test_report_contract(dev_plan, tmp_path):
    report = plan_mod.report(dev_plan)
    assert {"stack", "resources", "outputs", "violations", "validation", "summary"} <= set(report)
    assert report["stack"] == "dev"
    for r in report["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "provider", "inputs", "dependencies", "protect", "ignoreChanges"}
    provider = next(r for r in report["resources"] if r["type"] == "pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == "[secret]"
    assert report["outputs"]["kubeconfigs"] == {"secret": True}
    assert report["outputs"]["environment"] == "dev"
    assert report["summary"]["exitCode"] == 0 and report["summary"]["resources"] == len(report["resources"])
    # The report is JSON all the way down and never leaks a kubeconfig.
    text = json.dumps(report)
    assert "certificate-authority-data" not in text


def test_cli_writes_the_json_report(tmp_path):
    out = tmp_path / "plan.json"
    assert plan_mod.main("dev", None, str(out), quiet=True) == 0
    assert json.loads(out.read_text())["summary"]["mandatoryViolations"] == 0


def test_two_plans_of_the_same_config_are_identical(dev_plan):
    again = plan_mod.plan("dev")
    assert plan_mod.report(again) == plan_mod.report(dev_plan)
    # The printed plan too: registration order varies from run to run, the text must not.
    assert plan_mod.render(again) == plan_mod.render(dev_plan)


def test_highlights_name_the_cluster_of_every_helm_release(prod_plan):
    lines = [h for h in plan_mod._highlights(prod_plan.run) if h.startswith("helm ")]
    clusters = {"primary", "burst", "manager"}
    assert lines and all(any(line.split(" (image")[0].endswith(f" on {c}") for c in clusters) for line in lines)
    assert {line.split(" on ")[-1].split(" ")[0] for line in lines} == clusters


def test_policy_violation_fails_the_plan_with_exit_1(tmp_path):
    # A tenant namespace without a quota can only come from code that bypasses Tenant;
    # simulate it by dropping the quota from a real run.
    result = plan_mod.plan("dev")
    result.run.registrations = [r for r in result.run.registrations if not r.type.endswith(":ResourceQuota")]
    result.violations = plan_mod.run_policies(result.run)
    assert result.exit_code == 1
    assert {v.policy for v in result.violations} == {"kubernetes-namespace-gpu-quota"}


def _cluster_with(obj_factory):
    class FakeCluster(pulumi.ComponentResource):
        def __init__(self):
            super().__init__("ai-platform:clusters:FakeCluster", "c")
            self.provider = k8s.Provider("c-k8s", kubeconfig="{}", opts=pulumi.ResourceOptions(parent=self))
            self.register_outputs({"kubernetesVersion": "1.33"})

    def program():
        cluster = FakeCluster()
        obj_factory(pulumi.ResourceOptions(provider=cluster.provider))

    return run_component(program)


def test_invalid_kubernetes_object_is_caught_strictly():
    run = _cluster_with(lambda o: k8s.core.v1.LimitRange(
        "bad", metadata={"name": "l", "namespace": "n"},
        spec={"limits": [{"type": "Container", "defaultRequests": {"cpu": "1"}}]}, opts=o))
    result = plan_mod.PlanResult(stack="t", source="t")
    plan_mod.run_validation(run, result)
    assert result.checked["kubernetesObjects"] == 1
    (finding,) = result.findings
    assert "defaultRequests" in finding.reason


def test_valid_kubernetes_object_passes():
    run = _cluster_with(lambda o: k8s.core.v1.ConfigMap("ok", metadata={"name": "x", "namespace": "n"},
                                                        data={"a": "b"}, opts=o))
    result = plan_mod.PlanResult(stack="t", source="t")
    plan_mod.run_validation(run, result)
    assert result.findings == [] and result.checked["kubernetesObjects"] == 1


def test_helm_values_typos_are_caught(upstream):
    defaults = validate.chart_defaults(upstream, "cluster-autoscaler-9.59.0.values.yaml")
    values = {"rbac": {"serviceAccount": {"nmae": "x", "annotations": {"a": "b"}}}, "extraArgs": {"expander": "x"},
              "autoDiscovery": {"clusterName": "c"}, "nodeSelectr": {}}
    assert validate.unknown_value_keys(values, defaults, validate.FREEFORM_VALUES["cluster-autoscaler"]) == [
        "rbac.serviceAccount.nmae", "nodeSelectr"]


def test_plan_checks_the_autoscaler_values_against_the_pinned_chart(dev_plan, upstream):
    # Every release with pinned upstream values (all but kserve-crd and istio-cni).
    assert dev_plan.checked["helmReleases"] == len(dev_plan.run.by_type("kubernetes:helm.sh/v3:Release")) - 2 == 10
    assert dev_plan.skipped == []


def test_config_from_another_file_is_planned_under_its_own_name():
    result = plan_mod.plan(config_file=FIXTURES / "bad" / "Pulumi.min-gt-max.yaml")
    assert result.stack == "min-gt-max" and result.source == "Pulumi.min-gt-max.yaml"


def test_secret_placeholder_never_reaches_report_outputs(prod_plan):
    outputs = plan_mod.report(prod_plan)["outputs"]
    assert outputs["kubeconfigs"] == {"secret": True}
    assert plain(prod_plan.run.outputs["clusters"])["primary"]["cloud"] == "aws"
