"""A malicious tenant admin against the cluster's own guardrails: the admission policies the
plan registers, evaluated offline as the API server would, and the tenant roles."""

from __future__ import annotations

import copy

import pytest

from components import guardrails
from stacks import rbac, render
from stacks.admission import Request, User, admit

from .conftest import inputs

VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
VAPB = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
ADMIN = User("alice@research", ("research-admins", "system:authenticated"))
DEPLOYER = User("kubernetes-admin", ("system:masters", "system:authenticated"))
RS_CONTROLLER = User("system:serviceaccount:kube-system:replicaset-controller", ("system:serviceaccounts",))


class Cluster:
    """The guardrails and namespaces of one cluster of a plan."""

    def __init__(self, run, cluster: str = "primary"):
        mine = [r for r in run.resources if r.name.startswith(f"{cluster}-")]
        self.policies = [inputs(r) for r in mine if r.type == VAP]
        self.bindings = [inputs(r) for r in mine if r.type == VAPB]
        self.namespaces = {inputs(r)["metadata"]["name"]: inputs(r)["metadata"].get("labels") or {}
                           for r in mine if r.type == "kubernetes:core/v1:Namespace"}
        self.objects = [inputs(r) for r in mine if r.custom and "metadata" in inputs(r)]
        self.authorize = rbac.authorizer(self.objects)

    def admit(self, operation: str, resource: str, obj: dict | None, user: User = ADMIN, namespace: str = "research",
              group: str = "", old: dict | None = None):
        request = Request(user, operation, namespace, resource, group, object=obj, old_object=old)
        return admit(self.policies, self.bindings, request, self.namespaces[namespace], self.authorize)


@pytest.fixture(scope="module")
def dev(dev_plan):
    return Cluster(dev_plan.run)


def pod(**spec) -> dict:
    container = {"name": "main", "image": "registry.example/train:1.0",
                 "resources": {"limits": {"cpu": "2", "memory": "8Gi"}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "research"},
            "spec": {"containers": [container], "priority": 0, **spec}}


def gpu_pod(**spec) -> dict:
    p = pod(**{"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], **spec})
    p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "1"
    return p


def denied_by(decision) -> set[str]:
    """The policies that refused, by a validation that evaluated to false (not by an error)."""
    assert not decision.allowed
    assert not [m for _, m in decision.denials if "error" in m], decision.denials
    return {name for name, _ in decision.denials}


def test_every_cluster_with_tenants_has_the_policies_bound_to_tenant_namespaces(dev):
    names = {p["metadata"]["name"] for p in dev.policies}
    assert names == {p.name for p in guardrails.admission_policies()}
    for b in dev.bindings:
        assert b["spec"]["policyName"] in names and b["spec"]["validationActions"] == ["Deny"]
        assert b["spec"]["matchResources"]["namespaceSelector"] == {
            "matchExpressions": [{"key": "ai-platform.io/tenant", "operator": "Exists"}]}
    assert all(p["spec"]["failurePolicy"] == "Fail" for p in dev.policies)


def test_ordinary_tenant_work_is_admitted(dev):
    for obj in (pod(), gpu_pod()):
        for user in (ADMIN, RS_CONTROLLER):
            assert dev.admit("CREATE", "pods", obj, user).allowed
    svc = {"metadata": {"name": "api"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    assert dev.admit("CREATE", "services", svc).allowed
    cm = {"metadata": {"name": "c"}, "data": {"MODEL": "llama"}}
    assert dev.admit("CREATE", "configmaps", cm).allowed


def test_critical_or_any_raised_priority_is_refused(dev):
    # The Priority admission plugin has resolved the class to a number before validation.
    critical = pod(priorityClassName="system-node-critical", priority=2000001000)
    assert denied_by(dev.admit("CREATE", "pods", critical, RS_CONTROLLER)) == {"ai-platform-tenant-pods"}
    assert denied_by(dev.admit("CREATE", "pods", pod(priorityClassName="made-up-high", priority=1000000)))


def test_gpu_nodes_only_for_pods_that_request_gpus(dev):
    cpu_on_gpu = pod(tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                     nodeSelector={"ai-platform.io/pool": "l4"})
    assert denied_by(dev.admit("CREATE", "pods", cpu_on_gpu, RS_CONTROLLER))
    zero = gpu_pod()
    zero["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "0"
    assert denied_by(dev.admit("CREATE", "pods", zero))
    # Tolerating every taint, or the system pool's, is refused outright.
    assert denied_by(dev.admit("CREATE", "pods", gpu_pod(tolerations=[{"operator": "Exists"}])))
    system = pod(tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists"}])
    assert denied_by(dev.admit("CREATE", "pods", system))


@pytest.mark.parametrize("where", ["env", "envFrom-prefix", "initContainer", "ephemeral"])
def test_tenants_cannot_choose_which_gpus_a_container_sees(dev, where):
    obj = gpu_pod()
    container = obj["spec"]["containers"][0]
    if where == "env":
        container["env"] = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]
    elif where == "envFrom-prefix":
        container["envFrom"] = [{"prefix": "NVIDIA_", "configMapRef": {"name": "c"}}]
    elif where == "initContainer":
        obj["spec"]["initContainers"] = [{"name": "i", "image": "x", "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]}]
    else:
        obj["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "x",
                                               "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "0,1,2,3"}]}]
    resource = "pods/ephemeralcontainers" if where == "ephemeral" else "pods"
    assert denied_by(dev.admit("UPDATE" if where == "ephemeral" else "CREATE", resource, obj)) == {"ai-platform-tenant-pods"}
    # ... nor through a ConfigMap or Secret read with envFrom.
    for kind in ("configmaps", "secrets"):
        assert denied_by(dev.admit("CREATE", kind, {"metadata": {"name": "c"}, "data": {"NVIDIA_VISIBLE_DEVICES": "all"}}))


def test_services_cannot_redirect_or_intercept(dev):
    external = {"metadata": {"name": "other"}, "spec": {"type": "ExternalName",
                                                        "externalName": "model.nlp.svc.cluster.local"}}
    assert denied_by(dev.admit("CREATE", "services", external)) == {"ai-platform-tenant-services"}
    ips = {"metadata": {"name": "mitm"}, "spec": {"type": "ClusterIP", "externalIPs": ["10.0.12.7"]}}
    assert denied_by(dev.admit("CREATE", "services", ips))
    assert denied_by(dev.admit("CREATE", "services", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}}))
    # Knative's route placeholders are ExternalName Services it creates itself, to the mesh's gateway.
    knative = User("system:serviceaccount:knative-serving:controller", ("system:serviceaccounts",))
    assert dev.admit("CREATE", "services", external, knative).allowed


PUBLIC_ONLY = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "168.63.129.16/32"]


def netpol(*egress) -> dict:
    return {"metadata": {"name": "mine"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": list(egress)}}


@pytest.mark.parametrize("egress", [
    {},  # an empty rule allows every destination
    {"ports": [{"port": 443}]},
    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
    {"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]},  # instance metadata, every cloud
    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PUBLIC_ONLY[:-2]}}]},  # metadata not excepted
    {"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]},  # nodes and pods
    {"to": [{"namespaceSelector": {}}]},  # every namespace, istiod's debug and plaintext ports included
    {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}}]},
    {"to": [{"ipBlock": {"cidr": "::/0"}}]},  # AWS IMDS on IPv6 is fd00:ec2::254
])
def test_tenant_network_policies_cannot_open_the_cluster_or_metadata(dev, egress):
    assert denied_by(dev.admit("CREATE", "networkpolicies", netpol(egress), group="networking.k8s.io")) == {
        "ai-platform-tenant-network-policies"}


def test_tenant_network_policies_may_open_the_internet_and_their_namespace(dev):
    internet = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PUBLIC_ONLY}}], "ports": [{"port": 443}]}
    same = {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}
    ingress = {"metadata": {"name": "in"}, "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}}
    for obj in (netpol(internet, same), ingress):
        assert dev.admit("CREATE", "networkpolicies", obj, group="networking.k8s.io").allowed


def test_platform_objects_are_off_limits_to_tenants_but_not_to_the_platform(dev):
    deny_all = next(o for o in dev.objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "default-deny"
                    and o["metadata"]["namespace"] == "research")
    loosened = copy.deepcopy(deny_all)
    loosened["spec"]["policyTypes"] = ["Ingress"]
    np = {"group": "networking.k8s.io"}
    assert denied_by(dev.admit("UPDATE", "networkpolicies", loosened, old=deny_all, **np)) == {
        "ai-platform-tenant-platform-objects"}
    assert denied_by(dev.admit("DELETE", "networkpolicies", None, old=deny_all, **np))
    # A workload of the namespace acting with its ServiceAccount is a tenant too.
    sa = User("system:serviceaccount:research:default", ("system:serviceaccounts",))
    assert denied_by(dev.admit("DELETE", "networkpolicies", None, sa, old=deny_all, **np))
    # Imitating the platform's label is refused as well.
    fake = netpol({"to": [{"podSelector": {}}]})
    fake["metadata"]["labels"] = {"ai-platform.io/owner": "platform"}
    assert denied_by(dev.admit("CREATE", "networkpolicies", fake, **np))
    # A viewer, or anyone else who may not manage RBAC in the namespace, is refused too.
    viewer = User("bob@research", ("research-viewers",))
    assert denied_by(dev.admit("UPDATE", "networkpolicies", loosened, viewer, old=deny_all, **np))
    # The deployer and the namespace controller (deleting a namespace) are not tenants.
    assert dev.admit("UPDATE", "networkpolicies", loosened, DEPLOYER, old=deny_all, **np).allowed
    namespace_controller = User("system:serviceaccount:kube-system:namespace-controller")
    assert dev.admit("DELETE", "networkpolicies", None, namespace_controller, old=deny_all, **np).allowed


def test_guardrails_apply_only_in_tenant_namespaces(dev):
    # The platform's own namespaces keep their charts' behaviour (GPU Operator pods tolerate the taint).
    daemon = pod(tolerations=[{"operator": "Exists"}])
    assert dev.admit("CREATE", "pods", daemon, RS_CONTROLLER, namespace="gpu-operator").allowed


def test_every_platform_object_in_a_tenant_namespace_is_labelled_as_the_platforms(dev):
    tenants = {n for n, labels in dev.namespaces.items() if "ai-platform.io/tenant" in labels}
    in_tenants = [o for o in dev.objects if o["metadata"].get("namespace") in tenants and o["kind"] != "InferenceService"]
    assert len(in_tenants) > 10
    for o in in_tenants:
        assert o["metadata"]["labels"]["ai-platform.io/owner"] == "platform", (o["kind"], o["metadata"]["name"])


# -- RBAC: the tenant roles, and every tenant's effective permissions -----------------------

from .test_deploy import RELEASE  # noqa: E402


def can(rules: list[dict], verb: str, group: str, resource: str) -> bool:
    return any(rbac.rule_allows(r, rbac.Action(verb, group, resource, "research")) for r in rules)


SERVING_AND_TRAINING = [("serving.kserve.io", "inferenceservices"), ("serving.knative.dev", "services"),
                        ("jobset.x-k8s.io", "jobsets"), ("ray.io", "rayjobs"), ("ray.io", "rayclusters"),
                        ("batch", "jobs"), ("apps", "deployments"), ("", "pods"), ("", "services"),
                        ("", "secrets"), ("", "configmaps"), ("", "persistentvolumeclaims"),
                        ("networking.k8s.io", "networkpolicies")]


@pytest.mark.parametrize("group,resource", SERVING_AND_TRAINING)
def test_tenant_admins_can_run_serving_and_training(group, resource):
    assert can(guardrails.ADMIN_RULES, "create", group, resource)
    assert not can(guardrails.VIEWER_RULES, "create", group, resource)


def test_viewers_read_but_never_secrets_or_exec():
    assert can(guardrails.VIEWER_RULES, "list", "serving.kserve.io", "inferenceservices")
    assert can(guardrails.VIEWER_RULES, "get", "", "pods/log")
    assert not can(guardrails.VIEWER_RULES, "get", "", "secrets")
    assert not can(guardrails.VIEWER_RULES, "create", "", "pods/exec")
    assert can(guardrails.ADMIN_RULES, "create", "", "pods/exec")


def test_submitters_on_a_manager_queue_jobs_and_run_nothing():
    rules = guardrails.SUBMITTER_RULES
    assert can(rules, "create", "batch", "jobs") and can(rules, "create", "jobset.x-k8s.io", "jobsets")
    assert can(rules, "list", "kueue.x-k8s.io", "workloads")
    for group, resource in (("", "pods"), ("apps", "deployments"), ("", "secrets"), ("serving.kserve.io", "inferenceservices")):
        assert not can(rules, "create", group, resource)


def test_no_tenant_role_grants_what_the_deny_list_forbids():
    for name, rules in guardrails.ROLES.items():
        # Bound per namespace: what they may do there and cluster-wide, not elsewhere.
        for action in rbac.forbidden_actions("research", []):
            assert not any(rbac.rule_allows(r, action) for r in rules), (name, str(action))


@pytest.fixture(scope="module")
def dev_rbac(dev_plan, charts):
    """Every RBAC object of the dev cluster: the program's and every chart's, rendered."""
    objects = [inputs(r) for r in dev_plan.run.resources if r.custom and r.type.startswith("kubernetes:")
               and "kind" in inputs(r)]
    for rel in dev_plan.run.by_type(RELEASE):
        values = inputs(rel)
        objects += [render._in_namespace(d, values["namespace"])
                    for d in render.render_release(charts, values) if d.get("kind") in rbac.RBAC_KINDS]
    return objects


@pytest.fixture(scope="module")
def charts(upstream):
    if not (upstream / "charts-src").is_dir():
        pytest.skip("no chart sources in the upstream data")
    return upstream


PLATFORM = ["kube-system", "monitoring", "kueue-system", "istio-system", "kserve"]


def test_tenants_effective_permissions_over_every_chart_pass_the_deny_list(dev_rbac):
    assert rbac.tenant_subjects(dev_rbac)["research"]
    assert rbac.violations(dev_rbac, PLATFORM) == []
    # Some charts do aggregate into the built-in roles (Kueue's, cert-manager's editors) ...
    labels = [(o["metadata"].get("labels") or {}) for o in dev_rbac if o.get("kind") == "ClusterRole"]
    assert any(lbl.get("rbac.authorization.k8s.io/aggregate-to-admin") == "true" for lbl in labels)


# Kubernetes' bootstrap `admin` aggregates every ClusterRole labelled aggregate-to-admin; `edit`
# (so labelled) grants Ingresses, and `admin` itself Roles and RoleBindings
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
BUILTIN = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "admin"},
     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]},
     "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "edit", "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
     "rules": [{"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"],
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}]},
]


def test_the_check_catches_the_builtin_admin_role_and_chart_grants(dev_rbac):
    # What the platform did before: tenant admins bound to the built-in `admin`.
    builtin = [({**o, "roleRef": {**o["roleRef"], "name": "admin"}} if o["kind"] == "RoleBinding"
                and o["metadata"]["name"] == "tenant-admins" else o) for o in dev_rbac] + BUILTIN
    found = "\n".join(rbac.violations(builtin, PLATFORM))
    assert "may create networking.k8s.io/ingresses in research" in found
    assert "may create rbac.authorization.k8s.io/rolebindings in research" in found
    # A chart upgrade that binds every authenticated user to read Secrets in a platform namespace.
    leak = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "leak", "namespace": "kueue-system"},
             "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "leak", "namespace": "kueue-system"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leak"},
             "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]}]
    found = rbac.violations(dev_rbac + leak, PLATFORM)
    assert found and all("get core/secrets in kueue-system (through RoleBinding kueue-system/leak)" in f for f in found)


def test_on_the_dedicated_manager_tenants_only_submit_queued_jobs(prod_plan):
    run = prod_plan.run
    on_manager = [r for r in run.resources if r.name.startswith("manager-")]
    bindings = [inputs(r) for r in on_manager if r.type == "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
                and inputs(r)["metadata"]["name"] == "tenant-admins"]
    assert bindings and {b["roleRef"]["name"] for b in bindings} == {"ai-platform-tenant-submitter"}
    quotas = [inputs(r)["spec"]["hard"] for r in on_manager if r.type == "kubernetes:core/v1:ResourceQuota"
              and inputs(r)["metadata"]["name"] == "tenant-quota"]
    assert quotas and all(q["pods"] == "0" and q["requests.nvidia.com/gpu"] == "0" for q in quotas)
    # Workers keep the full role and quota.
    primary = [inputs(r) for r in run.resources if r.name.startswith("primary-")
               and r.type == "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
               and inputs(r)["metadata"]["name"] == "tenant-admins"]
    assert primary and {b["roleRef"]["name"] for b in primary} == {"ai-platform-tenant-admin"}
    # The manager has the guardrails too.
    assert Cluster(run, "manager").policies


def test_the_pack_and_admission_agree_on_taints_ranges_and_labels():
    from components.clusters.base import SYSTEM_TAINT
    from policies.rules import kubernetes as pack

    assert pack.SYSTEM_TAINT_KEYS == guardrails.SYSTEM_TAINT_KEYS == (SYSTEM_TAINT.key,)
    assert pack.INTERNAL_CIDRS == guardrails.INTERNAL_CIDRS
    assert pack.OWNER_LABEL == guardrails.LABEL_OWNER
