"""No churn: everyday changes touch only the resources they must, and never replace a
cluster or another node group. Compared on the URN sets and inputs of two offline plans."""

from __future__ import annotations

import pytest
import yaml

from stacks import plan as plan_mod
from stacks.engine import plain

from .conftest import REPO

CLUSTER_TYPES = ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster",
                 "azure-native:containerservice:ManagedCluster")
POOL_TYPES = ("aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool",
              "azure-native:containerservice:AgentPool")


def plan_variant(tmp_path, stack: str, mutate) -> plan_mod.PlanResult:
    doc = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    mutate(doc["config"])
    path = tmp_path / f"Pulumi.{stack}.yaml"  # same stack name: same physical names
    path.write_text(yaml.safe_dump(doc))
    result = plan_mod.plan(config_file=path)
    assert result.exit_code == 0, (result.config_errors, result.violations, result.findings)
    return result


def diff(before: plan_mod.PlanResult, after: plan_mod.PlanResult):
    a = {r.urn: r for r in before.run.resources}
    b = {r.urn: r for r in after.run.resources}
    changed = {u for u in a.keys() & b.keys()
               if plain(a[u].inputs, secret="[secret]") != plain(b[u].inputs, secret="[secret]")}
    return set(b) - set(a), set(a) - set(b), changed, a, b


@pytest.fixture(scope="module")
def base():
    return {"dev": plan_mod.plan("dev"), "prod": plan_mod.plan("prod")}


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _type(urn: str) -> str:
    return urn.split("::")[-2].split("$")[-1]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_adding_a_tenant_only_adds_that_tenant(tmp_path, base, stack):
    def add(config):
        config["ai-platform:tenants"].append({"name": "newteam", "gpus": 0, "adminGroups": ["newteam-admins"]})

    added, removed, changed, _, _ = diff(base[stack], plan_variant(tmp_path, stack, add))
    assert added and all("newteam" in _name(u) for u in added), sorted(_name(u) for u in added)
    assert removed == set() and changed == set(), sorted(_name(u) for u in changed)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_removing_a_tenant_only_removes_that_tenant(tmp_path, base, stack):
    def remove(config):
        config["ai-platform:tenants"] = [t for t in config["ai-platform:tenants"] if t["name"] != "recsys"]

    added, removed, changed, _, _ = diff(base[stack], plan_variant(tmp_path, stack, remove))
    assert removed and all("recsys" in _name(u) for u in removed)
    assert added == set() and changed == set(), sorted(_name(u) for u in changed)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_adding_a_gpu_pool_replaces_nothing(tmp_path, base, stack):
    def add_pool(config):
        config["ai-platform:clusters"][0]["gpuPools"].append(
            {"name": "extra", "machineType": "g6e.xlarge", "capacity": "spot", "min": 0, "max": 2})

    added, removed, changed, before, _ = diff(base[stack], plan_variant(tmp_path, stack, add_pool))
    assert added and all("extra" in _name(u) for u in added)
    assert removed == set()
    # Only the tenants' ClusterQueues change: their GPU quota now spans one more flavor.
    assert {_type(u) for u in changed} <= {"kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"}, \
        sorted(_name(u) for u in changed)
    assert not any(before[u].type in CLUSTER_TYPES + POOL_TYPES for u in changed)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_changing_a_pools_max_is_an_in_place_update_of_that_pool(tmp_path, base, stack):
    def grow(config):
        config["ai-platform:clusters"][0]["gpuPools"][-1]["max"] += 2

    added, removed, changed, before, after = diff(base[stack], plan_variant(tmp_path, stack, grow))
    assert added == removed == set()
    pools = [u for u in changed if before[u].type in POOL_TYPES]
    assert len(pools) == 1
    old, new = plain(before[pools[0]].inputs), plain(after[pools[0]].inputs)
    assert {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)} == {"scalingConfig"}
    assert old["scalingConfig"]["maxSize"] + 2 == new["scalingConfig"]["maxSize"]
    assert {_type(u) for u in changed} - {before[pools[0]].type} <= {"kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"}
    assert not any(before[u].type in CLUSTER_TYPES for u in changed)


def test_two_prod_plans_are_identical(base):
    again = plan_mod.plan("prod")
    assert plan_mod.report(again) == plan_mod.report(base["prod"])


def test_prod_protects_clusters_keys_and_metrics_volumes_and_dev_does_not(base):
    protected = {(r.type, r.name) for r in base["prod"].run.resources if r.protect}
    for cluster in ("primary", "burst", "manager"):
        kinds = {t for t, n in protected if n.startswith(f"{cluster}-")}
        assert kinds & set(CLUSTER_TYPES), cluster
        assert kinds & {"aws:kms/key:Key", "gcp:kms/cryptoKey:CryptoKey"}, cluster
    releases = {n for t, n in protected if t == "kubernetes:helm.sh/v3:Release"}
    assert releases == {"primary-observability-release", "burst-observability-release"}
    assert not any(r.protect for r in base["dev"].run.resources)


def test_autoscaler_managed_fields_are_ignored_on_every_cloud(cloud_plans, base):
    runs = [p.run for p in cloud_plans.values()] + [base["prod"].run]
    expected = {"aws:eks/nodeGroup:NodeGroup": ["scalingConfig.desiredSize"],
                "gcp:container/nodePool:NodePool": ["nodeCount", "initialNodeCount"],
                "azure-native:containerservice:AgentPool": ["count"],
                "azure-native:containerservice:ManagedCluster": ["agentPoolProfiles[0].count", "kubernetesVersion"]}
    seen = set()
    for run in runs:
        for r in run.resources:
            if r.type in expected:
                assert r.ignore_changes == expected[r.type], (r.type, r.name)
                seen.add(r.type)
    assert seen == set(expected)


def test_variant_helper_does_not_mutate_the_stack_file(tmp_path):
    before = (REPO / "Pulumi.dev.yaml").read_text()
    plan_variant(tmp_path, "dev", lambda c: c["ai-platform:tenants"].pop())
    assert (REPO / "Pulumi.dev.yaml").read_text() == before
