"""Tenant: quotas (GPU included), limits, default-deny networking, RBAC and Pod Security."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.tenancy import Tenant, TenantPlatform, TenantSpec

from .conftest import inputs, run_component
from .netpol import Network, Pod


def build(spec: TenantSpec, platform: TenantPlatform | None = None):
    def program():
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        Tenant(f"primary-{spec.name}", spec, "1.33", platform or TenantPlatform(),
               opts=pulumi.ResourceOptions(provider=provider))

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
    assert inputs(binding)["subjects"] == [{"kind": "Group", "name": "auditors", "apiGroup": "rbac.authorization.k8s.io"}]
    # The names that shipped.
    assert (binding.name, inputs(binding)["metadata"]["name"]) == ("primary-a-viewers", "tenant-viewers")


def test_on_a_submit_only_manager_tenants_queue_jobs_but_run_nothing():
    run = build(TenantSpec(name="a", gpus=4, borrow_gpus=2, pods=50, admin_groups=("a-admins",)),
                TenantPlatform(local_queues=(("default", ""),), submit_only=True))
    hard = inputs(run.one("kubernetes:core/v1:ResourceQuota", "primary-a-quota"))["spec"]["hard"]
    # The manager's copies stay suspended while workers run the real pods: here, none may start.
    assert (hard["pods"], hard["requests.nvidia.com/gpu"]) == ("0", "0")
    (binding,) = run.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert inputs(binding)["roleRef"]["name"] == "ai-platform-tenant-submitter"
    assert run.by_type("kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue")


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


# What prod's primary offers tenants: Istio, Knative serving and Prometheus.
MESH = TenantPlatform(mesh_gateway_principal="cluster.local/ns/istio-system/sa/istio-ingressgateway",
                      mesh_namespace="istio-system",
                      allowed_source_namespaces=("istio-system", "knative-serving", "monitoring"),
                      mesh_source_namespaces=("istio-system", "knative-serving"))
# Pods as their charts label them (istiod and gateway charts, CoreDNS on every cloud, Prometheus).
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
ISTIOD = Pod("istio-system", {"app": "istiod", "istio": "pilot"})
GATEWAY = Pod("istio-system", {"app": "istio-ingressgateway", "istio": "ingressgateway"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
ACTIVATOR = Pod("knative-serving", {"app": "activator"})


def network(run) -> Network:
    return Network([inputs(r) for r in run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")])


@pytest.fixture(scope="module")
def meshed():
    return build(TenantSpec(name="research", gpus=1), MESH)


@pytest.mark.parametrize("platform", ["plain", "mesh"])
def test_tenant_pods_resolve_names_over_udp_and_tcp_and_reach_nothing_else_in_kube_system(research, meshed,
                                                                                          platform):
    net, pod = network({"plain": research, "mesh": meshed}[platform]), Pod("research", {"app": "train"})
    # Large answers (DNSSEC, many records) fall back to TCP.
    assert net.allows(pod, KUBE_DNS, 53, "UDP") and net.allows(pod, KUBE_DNS, 53, "TCP")
    assert not net.allows(pod, KUBE_DNS, 443)
    assert not net.allows(pod, Pod("kube-system", {"k8s-app": "metrics-server"}), 53, "UDP")
    assert not net.allows(pod, Pod("default", {"k8s-app": "kube-dns"}), 53, "UDP")


@pytest.mark.parametrize("platform", ["plain", "mesh"])
def test_tenant_pods_talk_freely_inside_their_namespace_and_not_across(research, meshed, platform):
    net = network({"plain": research, "mesh": meshed}[platform])
    a, b, other = Pod("research", {"app": "a"}), Pod("research", {}), Pod("recsys", {"app": "a"})
    assert net.allows(a, b, 8080) and net.allows(b, a, 29500) and net.allows(a, b, 5353, "UDP")
    assert not net.allows(a, other, 8080) and not net.allows(other, a, 8080)
    assert not net.allows(a, Pod("monitoring", {}), 9090)


def test_without_a_mesh_nothing_of_the_platform_reaches_a_tenant(research):
    net, pod = network(research), Pod("research", {"app": "model"})
    for caller in (GATEWAY, PROMETHEUS, ACTIVATOR):
        assert not net.allows(caller, pod, 8080)
    assert not net.allows(pod, ISTIOD, 15012)


def test_sidecars_reach_istiod_on_its_mtls_port_only(meshed):
    net, pod = network(meshed), Pod("research", {"app": "model"})
    assert net.allows(pod, ISTIOD, 15012)
    # Not the plaintext xDS port, not the HTTP port where /debug lives, not the webhook.
    for port in (15010, 8080, 15017, 443):
        assert not net.allows(pod, ISTIOD, port), port
    assert not net.allows(pod, GATEWAY, 15012)
    assert not net.allows(pod, Pod("istio-system", {"app": "istiod"}), 15012, "UDP")


def test_the_gateway_knative_and_prometheus_reach_tenant_pods_and_nothing_else_does(meshed):
    net, pod = network(meshed), Pod("research", {"app": "model"})
    assert net.allows(GATEWAY, pod, 8080)
    assert net.allows(ACTIVATOR, pod, 8012)
    assert net.allows(PROMETHEUS, pod, 15020)  # the sidecar's merged metrics
    for caller in (Pod("kube-system", {}), Pod("recsys", {"app": "model"}), Pod("kserve", {})):
        assert not net.allows(caller, pod, 8080), caller


def test_only_prometheus_reaches_tenants_when_observability_is_the_only_add_on():
    run = build(TenantSpec(name="research", gpus=1), TenantPlatform(allowed_source_namespaces=("monitoring",)))
    net, pod = network(run), Pod("research", {"app": "model"})
    assert net.allows(PROMETHEUS, pod, 8000)
    assert not net.allows(GATEWAY, pod, 8080)
    # No mesh: tenant egress stays at DNS and its own namespace.
    assert not net.allows(pod, ISTIOD, 15012)


def _mesh_allows(run, namespace: str | None = None, principal: str | None = None) -> bool:
    """Istio ALLOW semantics: a request passes when any rule's `from` source matches it."""
    (policy,) = [inputs(r) for r in run.by_type("kubernetes:security.istio.io/v1:AuthorizationPolicy")]
    assert policy["spec"]["action"] == "ALLOW"
    for rule in policy["spec"]["rules"]:
        for source in (s["source"] for s in rule["from"]):
            if namespace in source.get("namespaces", ()) or principal in source.get("principals", ()):
                return True
    return False


def test_the_mesh_admits_the_namespace_the_gateway_and_knative_only(meshed, research):
    assert _mesh_allows(meshed, namespace="research")
    assert _mesh_allows(meshed, namespace="knative-serving")
    assert _mesh_allows(meshed, principal="cluster.local/ns/istio-system/sa/istio-ingressgateway")
    assert not _mesh_allows(meshed, namespace="recsys")
    assert not _mesh_allows(meshed, principal="cluster.local/ns/istio-system/sa/other")
    # Sidecars are injected into every tenant pod when the mesh is on, and only then.
    labels = [inputs(ns)["metadata"]["labels"] for run in (meshed, research)
              for ns in run.by_type("kubernetes:core/v1:Namespace")]
    assert [lbl.get("istio-injection") for lbl in labels] == ["enabled", None]
    assert not research.by_type("kubernetes:security.istio.io/v1:AuthorizationPolicy")


def test_a_tenant_given_only_its_gpus_gets_the_documented_quotas():
    # The README's tenant table: cpu 16, memory 64Gi, 100 pods, 20 PVCs, 500Gi storage, 200Gi node disk.
    run = build(TenantSpec(name="small", gpus=2))
    hard = inputs(run.one("kubernetes:core/v1:ResourceQuota", "primary-small-quota"))["spec"]["hard"]
    assert {k: hard[k] for k in ("requests.cpu", "requests.memory", "limits.memory", "pods", "persistentvolumeclaims",
                                 "requests.storage", "requests.ephemeral-storage", "requests.nvidia.com/gpu")} == {
        "requests.cpu": "16", "requests.memory": "64Gi", "limits.memory": "64Gi", "pods": "100",
        "persistentvolumeclaims": "20", "requests.storage": "500Gi", "requests.ephemeral-storage": "200Gi",
        "requests.nvidia.com/gpu": "2"}
    # Nothing is borrowed unless asked: the namespace ceiling is the guaranteed GPUs.
    borrowing = build(TenantSpec(name="big", gpus=2, borrow_gpus=3))
    assert inputs(borrowing.one("kubernetes:core/v1:ResourceQuota", "primary-big-quota"))["spec"]["hard"][
        "requests.nvidia.com/gpu"] == "5"


@pytest.mark.parametrize("name", ["kube-foo", "kube-system", "default", "monitoring", "istio-system"])
def test_kubernetes_and_platform_namespaces_are_refused_as_tenant_names(name):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="reserved namespace"):
        TenantSpec(name=name, gpus=0)


def test_args_cannot_be_changed_after_validation():
    # Validation runs once, up front: a component must never see args changed after it.
    import dataclasses

    from pydantic import ValidationError

    from components.addons.kueue import TenantQuota
    from components.bursting import WorkerRef

    spec = TenantSpec(name="a", gpus=1)
    with pytest.raises(ValidationError):
        spec.gpus = 10_000_000
    for frozen, field in ((TenantPlatform(), "submit_only"), (TenantQuota("a", 1, 0, "1", "1Gi"), "gpus"),
                          (WorkerRef("burst", None), "name")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, field, 1)


def test_the_whole_kit_is_found_by_its_tenant_label(meshed):
    # `kubectl get <kind> -A -l ai-platform.io/tenant=research` lists every object of the tenant.
    objects = [inputs(r) for r in meshed.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    assert len(objects) >= 8
    for o in objects:
        assert (o["metadata"].get("labels") or {}).get("ai-platform.io/tenant") == "research", o["metadata"]["name"]
        # ...and as the platform's, which the admission rule keeps tenants from touching (README,
        # "Tenant security model").
        assert o["metadata"]["labels"].get("ai-platform.io/owner") == "platform", o["metadata"]["name"]
        # Kubernetes' recommended label: whoever finds it with kubectl knows not to edit it by hand.
        assert o["metadata"]["labels"].get("app.kubernetes.io/managed-by") == "pulumi", o["metadata"]["name"]


def test_the_components_type_token_is_the_one_that_shipped(research):
    # It is part of every child's URN: a new token would make `pulumi up` replace every tenant's objects.
    (component,) = [r for r in research.resources if not r.custom]
    assert component.type == "ai-platform:tenancy:Tenant" and component.name == "primary-research"
    ns = research.one("kubernetes:core/v1:Namespace", "primary-research-namespace")
    assert "ai-platform:tenancy:Tenant$kubernetes:core/v1:Namespace::primary-research-namespace" in ns.urn
    # So are the children's names.
    assert {r.name for r in research.resources if r.custom and not r.type.startswith("pulumi:providers:")} == {
        f"primary-research-{role}" for role in ("namespace", "quota", "priority-quota", "limits", "default-deny",
                                                "allow-dns", "allow-same-namespace", "admins")}
    assert research.component_outputs[component.urn] == {"namespace": "research"}


def _quota_refuses(run, namespace: str, priority_class: str | None) -> bool:
    """Does a ResourceQuota of the namespace with `pods: 0` cover a pod of this priority class?
    (https://kubernetes.io/docs/concepts/policy/resource-quotas/#quota-scopes)"""
    for r in run.by_type("kubernetes:core/v1:ResourceQuota"):
        q = inputs(r)
        if q["metadata"]["namespace"] != namespace or q.get("spec", {}).get("hard", {}).get("pods") != "0":
            continue
        exprs = (q["spec"].get("scopeSelector") or {}).get("matchExpressions", [])
        covered = all(
            {"In": priority_class in e.get("values", []), "NotIn": priority_class not in e.get("values", []),
             "Exists": priority_class is not None, "DoesNotExist": priority_class is None}[e["operator"]]
            for e in exprs if e["scopeName"] == "PriorityClass")
        if covered:
            return True
    return False


def test_a_tenant_pod_at_a_critical_priority_is_refused_and_others_are_not(research):
    assert _quota_refuses(research, "research", "system-node-critical")
    assert _quota_refuses(research, "research", "system-cluster-critical")
    for ordinary in (None, "platform-high", "tenant-batch"):
        assert not _quota_refuses(research, "research", ordinary), ordinary


# Each count a tenant sets, with the range the config accepts (below it there is no tenant,
# above it a typo like an extra zero that would hand one tenant the whole cluster).
BOUNDS = [("gpus", 0, 100000), ("borrow_gpus", 0, 100000), ("pods", 1, 100000), ("pvcs", 0, 10000)]


@pytest.mark.parametrize("field,low,high", BOUNDS)
def test_tenant_counts_are_accepted_inside_their_range_and_refused_outside(field, low, high):
    from pydantic import ValidationError

    base = {"name": "a", "gpus": 1}
    for ok in (low, high):
        assert getattr(TenantSpec(**{**base, field: ok}), field) == ok
    for bad in (low - 1, high + 1):
        with pytest.raises(ValidationError, match=field):
            TenantSpec(**{**base, field: bad})


def test_custom_resources_wait_for_the_namespace_and_their_crds_and_nothing_else_waits_for_crds():
    holder = {}

    def program():
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        crds = k8s.core.v1.ConfigMap("istio-base", opts=pulumi.ResourceOptions(provider=provider))
        roles = k8s.core.v1.ConfigMap("tenant-roles", opts=pulumi.ResourceOptions(provider=provider))
        holder["crds"] = crds
        platform = TenantPlatform(**{**MESH.__dict__, "local_queues": (("default", ""),)})
        Tenant("primary-research", TenantSpec(name="research", gpus=1, admin_groups=("research-admins",)), "1.33",
               platform, crds=[crds], roles=[roles], opts=pulumi.ResourceOptions(provider=provider))

    run = run_component(program)
    ns = run.one("kubernetes:core/v1:Namespace", "primary-research-namespace")
    crds = run.one("kubernetes:core/v1:ConfigMap", "istio-base")
    roles = run.one("kubernetes:core/v1:ConfigMap", "tenant-roles")
    # The bindings wait for the ClusterRoles they grant (else admins start with nothing), and only they do.
    for r in run.resources:
        if r.custom and r.type.startswith("kubernetes:") and r not in (roles, crds):
            assert (roles.urn in r.dependencies) is r.type.endswith(":RoleBinding"), r.name
    # The kit's names that shipped, mesh and queue included.
    assert {(inputs(r)["kind"], r.name, inputs(r)["metadata"]["name"]) for r in run.resources
            if r.type.split(":")[1].split("/")[0] in ("security.istio.io", "kueue.x-k8s.io", "networking.k8s.io")} >= {
        ("AuthorizationPolicy", "primary-research-authz", "tenant-isolation"),
        ("LocalQueue", "primary-research-queue", "default"),
        ("NetworkPolicy", "primary-research-allow-platform", "allow-platform")}
    custom = {"kubernetes:security.istio.io/v1:AuthorizationPolicy", "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue"}
    assert {r.type for r in run.resources} >= custom
    for r in run.resources:
        if not r.custom or r.type.startswith("pulumi:providers:") or r in (ns, crds, roles):
            continue
        assert ns.urn in r.dependencies, r.name
        # The namespace kit goes in as soon as the cluster is up; only Istio and Kueue objects need their CRDs.
        assert (crds.urn in r.dependencies) is (r.type in custom), r.name
