"""Tenant: quotas (GPU included), limits, default-deny networking, RBAC and Pod Security."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.tenancy import Tenant, TenantSpec

from .conftest import inputs, run_component


def build(spec: TenantSpec):
    def program():
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        Tenant(f"primary-{spec.name}", spec, "1.33", opts=pulumi.ResourceOptions(provider=provider))

    return run_component(program)


@pytest.fixture(scope="module")
def research():
    return build(TenantSpec(name="research", gpus=16, cpu="128", memory="512Gi", admin_groups=("research-admins",)))


def test_quota_limits_gpu_requests_and_load_balancers(research):
    hard = inputs(research.one("kubernetes:core/v1:ResourceQuota", "primary-research-quota"))["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "16"
    assert hard["requests.cpu"] == "128"
    assert hard["requests.memory"] == hard["limits.memory"] == "512Gi"
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"
    assert {"pods", "persistentvolumeclaims", "requests.storage"} <= set(hard)
    # Node disk is shared: without this a tenant fills it and its neighbours get evicted.
    assert hard["requests.ephemeral-storage"] == hard["limits.ephemeral-storage"] == "200Gi"


def test_zero_gpu_tenant_still_has_a_gpu_quota():
    run = build(TenantSpec(name="cpu-only", gpus=0))
    hard = inputs(run.one("kubernetes:core/v1:ResourceQuota", "primary-cpu-only-quota"))["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "0"


def test_namespace_enforces_restricted_pod_security(research):
    labels = inputs(research.one("kubernetes:core/v1:Namespace", "primary-research-namespace"))["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.33"
    assert labels["ai-platform.io/tenant"] == "research"


def test_network_policy_denies_all_traffic_by_default(research):
    deny = inputs(research.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "primary-research-default-deny"))
    assert deny["spec"]["podSelector"] == {}
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_only_dns_and_same_namespace_traffic_are_allowed(research):
    policies = {r.name: inputs(r)["spec"] for r in research.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert set(policies) == {"primary-research-default-deny", "primary-research-allow-dns", "primary-research-allow-same-namespace"}
    dns = policies["primary-research-allow-dns"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    same = policies["primary-research-allow-same-namespace"]
    # Peers with only a podSelector stay inside the policy's own namespace.
    assert same["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert same["egress"] == [{"to": [{"podSelector": {}}]}]


def test_limit_range_gives_containers_defaults(research):
    limits = inputs(research.one("kubernetes:core/v1:LimitRange", "primary-research-limits"))["spec"]["limits"][0]
    assert limits["type"] == "Container"
    assert limits["defaultRequest"] == {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi"}
    assert limits["default"] == {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "20Gi"}


def test_groups_bind_to_the_platforms_tenant_roles_only_in_their_namespace(research):
    # Never the built-in `admin`: it grants Ingresses, RoleBindings and whatever charts aggregate into it.
    (binding,) = research.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    b = inputs(binding)
    assert b["metadata"]["namespace"] == "research"
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "ai-platform-tenant-admin"}
    assert b["subjects"] == [{"kind": "Group", "name": "research-admins", "apiGroup": "rbac.authorization.k8s.io"}]


def test_viewers_get_the_tenant_viewer_role():
    run = build(TenantSpec(name="a", gpus=1, viewer_groups=("auditors",)))
    (binding,) = run.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert inputs(binding)["roleRef"]["name"] == "ai-platform-tenant-viewer"


def test_object_names_come_only_from_the_tenant(research):
    names = {(inputs(r)["metadata"].get("namespace"), inputs(r)["metadata"]["name"]) for r in research.resources if r.custom and not r.type.startswith("pulumi:providers:")}
    assert names == {
        (None, "research"),
        ("research", "tenant-quota"),
        ("research", "tenant-no-critical-priority"),
        ("research", "tenant-limits"),
        ("research", "default-deny"),
        ("research", "allow-dns"),
        ("research", "allow-same-namespace"),
        ("research", "tenant-admins"),
    }


def test_everything_in_the_namespace_waits_for_it(research):
    ns = research.one("kubernetes:core/v1:Namespace", "primary-research-namespace")
    for r in research.resources:
        if r.custom and r is not ns and not r.type.startswith("pulumi:providers:"):
            assert ns.urn in r.dependencies, r.name


def test_tenants_cannot_run_pods_at_critical_priority(prod_plan):
    # A tenant at system-node-critical would preempt other tenants and the platform's controllers.
    namespaces = {inputs(r)["metadata"]["name"] for r in prod_plan.run.by_type("kubernetes:core/v1:Namespace")
                  if "ai-platform.io/tenant" in (inputs(r)["metadata"].get("labels") or {})}
    quotas = {inputs(r)["metadata"]["namespace"]: inputs(r)["spec"]
              for r in prod_plan.run.by_type("kubernetes:core/v1:ResourceQuota")
              if inputs(r)["metadata"]["name"] == "tenant-no-critical-priority"}
    assert namespaces and set(quotas) == namespaces
    for spec in quotas.values():
        assert spec["hard"] == {"pods": "0"}
        (expr,) = spec["scopeSelector"]["matchExpressions"]
        assert expr["scopeName"] == "PriorityClass" and expr["operator"] == "In"
        assert set(expr["values"]) == {"system-node-critical", "system-cluster-critical"}


def test_a_tenant_cannot_take_over_a_namespace_the_platform_or_kubernetes_uses(prod_plan, dev_plan):
    from pydantic import ValidationError

    # Every namespace the platform creates on any cluster, and Kubernetes' own.
    used = {inputs(r)["metadata"]["name"] for plan in (prod_plan, dev_plan)
            for r in plan.run.by_type("kubernetes:core/v1:Namespace")
            if "ai-platform.io/tenant" not in (inputs(r)["metadata"].get("labels") or {})}
    used |= {"default", "kube-system", "kube-public", "kube-node-lease", "kube-anything"}
    assert {"monitoring", "istio-system", "kueue-system", "gpu-operator"} <= used
    for name in sorted(used):
        with pytest.raises(ValidationError, match="reserved namespace"):
            TenantSpec(name=name, gpus=0)
    TenantSpec(name="kubeflow-team", gpus=0)  # only the `kube-` prefix is Kubernetes'


def test_tenants_queue_is_named_as_kueue_defaults_it():
    # Kueue's LocalQueueDefaulting puts unlabelled jobs into the LocalQueue named "default".
    from components.tenancy import TenantPlatform

    def program():
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        Tenant("primary-a", TenantSpec(name="a", gpus=1), "1.33", TenantPlatform(local_queues=(("default", ""),)),
               opts=pulumi.ResourceOptions(provider=provider))

    (queue,) = run_component(program).by_type("kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")
    assert inputs(queue)["metadata"]["name"] == "default" and inputs(queue)["spec"]["clusterQueue"] == "a"
    # A resource name that shipped never changes (it would replace every tenant's queue).
    assert queue.name == "primary-a-queue"


def test_a_changed_role_replaces_the_binding_instead_of_failing(research):
    # Kubernetes refuses any change to a binding's roleRef; the upgrade from the built-in `admin`
    # must replace the binding (deleting first: same name).
    (binding,) = research.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.replace_on_changes == ["roleRef"] and binding.delete_before_replace
