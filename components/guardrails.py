"""TenantGuardrails: what a tenant's people may do on one cluster, and what the API server
refuses them whatever their role.

- ClusterRoles of our own for tenant admins, viewers and (on a dedicated MultiKueue manager)
  submitters, bound per namespace by each Tenant. The built-in `admin`/`edit` roles are not
  used: they grant Ingresses, Endpoints, RoleBindings and whatever any chart aggregates into
  them, which a malicious tenant admin turns into host hijacks and privilege escalation.
- ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1, GA since Kubernetes 1.30)
  bound to every tenant namespace: pods (priority, tolerations, GPU requests, GPU visibility),
  Services, NetworkPolicies, and platform-owned objects. They hold in the cluster whoever
  applies the object, not only in CrossGuard at `pulumi preview`.
  https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .addons.common import KubernetesObject
from .clusters.base import GPU_RESOURCE, SYSTEM_TAINT
from .tenancy import ADMIN_ROLE, LABEL_OWNER, LABEL_TENANT, OWNER_PLATFORM, SUBMITTER_ROLE, VIEWER_ROLE

READ = ("get", "list", "watch")
WRITE = (*READ, "create", "update", "patch", "delete", "deletecollection")

# What tenants run their work with: read-write for admins, read-only for viewers.
WORKLOADS: dict[str, tuple[str, ...]] = {
    "": ("pods", "services", "configmaps", "persistentvolumeclaims", "serviceaccounts"),
    "apps": ("deployments", "statefulsets", "replicasets"),
    "batch": ("jobs", "cronjobs"),
    "autoscaling": ("horizontalpodautoscalers",),
    "networking.k8s.io": ("networkpolicies",),
    "serving.kserve.io": ("inferenceservices", "inferencegraphs", "servingruntimes", "trainedmodels"),
    "serving.knative.dev": ("services",),
    "jobset.x-k8s.io": ("jobsets",),
    "ray.io": ("rayjobs", "rayclusters", "rayservices"),
    "kubeflow.org": ("mpijobs", "pytorchjobs"),
    "trainer.kubeflow.org": ("trainjobs",),
    "leaderworkerset.x-k8s.io": ("leaderworkersets",),
}
# What they may see but never change: the platform sets these or controllers write them.
# Endpoints are read-only on purpose: writable Endpoints redirect a Service anywhere
# (CVE-2021-25740).
OBSERVED: dict[str, tuple[str, ...]] = {
    "": ("events", "endpoints", "resourcequotas", "limitranges", "namespaces", "pods/log"),
    "events.k8s.io": ("events",),
    "discovery.k8s.io": ("endpointslices",),
    "apps": ("controllerrevisions",),
    "policy": ("poddisruptionbudgets",),
    "serving.knative.dev": ("routes", "configurations", "revisions"),
    "kueue.x-k8s.io": ("localqueues", "workloads"),
    "metrics.k8s.io": ("pods",),
}
# Submitting work to a dedicated MultiKueue manager: the job kinds it dispatches, nothing
# that runs there (tenants have a zero-pod quota on it).
SUBMITTED: dict[str, tuple[str, ...]] = {
    "batch": ("jobs",),
    "jobset.x-k8s.io": ("jobsets",),
    "ray.io": ("rayjobs",),
    "kubeflow.org": ("mpijobs",),
    "trainer.kubeflow.org": ("trainjobs",),
}


def _rules(groups: dict[str, tuple[str, ...]], verbs: tuple[str, ...]) -> list[dict]:
    return [{"apiGroups": [g], "resources": list(r), "verbs": list(verbs)} for g, r in groups.items()]


ADMIN_RULES = [
    *_rules(WORKLOADS, WRITE),
    *_rules({"": ("secrets",)}, WRITE),
    # Debugging their own pods; Pod Security `restricted` still applies to what runs.
    {"apiGroups": [""], "resources": ["pods/exec", "pods/attach", "pods/portforward"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
     "verbs": ["get", "patch", "update"]},
    *_rules(OBSERVED, READ),
]
VIEWER_RULES = [*_rules(WORKLOADS, READ), *_rules(OBSERVED, READ)]
SUBMITTER_RULES = [
    *_rules(SUBMITTED, WRITE),
    *_rules({"": ("events", "resourcequotas"), "kueue.x-k8s.io": ("localqueues", "workloads")}, READ),
]
ROLES = {ADMIN_ROLE: ADMIN_RULES, VIEWER_ROLE: VIEWER_RULES, SUBMITTER_ROLE: SUBMITTER_RULES}

# -- admission ----------------------------------------------------------------------------

VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
# Addresses no tenant pod may be allowed to reach by a NetworkPolicy it writes: private and
# carrier-grade NAT ranges (nodes, pods, Services, the cloud's control planes), link-local
# (the instance metadata service on every cloud, 169.254.169.254, and the EKS Pod Identity
# agent, 169.254.170.23), Azure's wireserver, and their IPv6 counterparts (AWS IMDS is
# fd00:ec2::254, inside fc00::/7).
INTERNAL_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
                  "168.63.129.16/32", "fc00::/7", "fe80::/10")
SYSTEM_TAINT_KEYS = (SYSTEM_TAINT.key,)
NAME = "ai-platform-tenant-{}"


def _quoted(values) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _containers_all(check: str) -> str:
    """`check` (on `c`) for every container, init container and ephemeral container: three
    lists of two types, so three loops rather than one concatenation the type checker refuses."""
    return " && ".join(
        f"(!has(object.spec.{lst}) || object.spec.{lst}.all(c, {check}))" if optional else f"object.spec.{lst}.all(c, {check})"
        for lst, optional in (("containers", False), ("initContainers", True), ("ephemeralContainers", True))
    )


def _requests_gpu() -> str:
    has_gpu = (f"has(c.resources.limits) && '{GPU_RESOURCE}' in c.resources.limits"
               f" && string(c.resources.limits['{GPU_RESOURCE}']) != '0'")  # the canonical zero quantity
    return (f"object.spec.containers.exists(c, {has_gpu})"
            f" || (has(object.spec.initContainers) && object.spec.initContainers.exists(c, {has_gpu}))")


# CEL: the request comes from a tenant. Either a workload of the namespace (its
# ServiceAccounts), or a person who may not manage RBAC in the namespace: tenant admins and
# viewers never may, the deployer (cluster-admin) may. Kubernetes' own components (`system:`
# users, kube-system's controllers such as the namespace controller deleting a namespace) and
# the platform's controllers (ServiceAccounts of other namespaces) are not tenants. Asking the
# authorizer instead of listing tenants' groups keeps adding a tenant from touching the
# policies. `authorizer` is available to match conditions (KEP-3716).
TENANT_SUBJECT = (
    "request.userInfo.username.startsWith('system:serviceaccount:' + request.namespace + ':')"
    " || (!request.userInfo.username.startsWith('system:')"
    " && !authorizer.group('rbac.authorization.k8s.io').resource('rolebindings')"
    ".namespace(request.namespace).check('create').allowed())"
)


def _egress_peer_ok() -> str:
    """CEL on an egress peer `p`: same-namespace pods, or addresses outside INTERNAL_CIDRS
    (a block that covers one of them must list it, or a larger block, in `except`)."""
    covered = ("variables.internal.all(r, !cidr(r).containsCIDR(p.ipBlock.cidr)"
               " && (!cidr(p.ipBlock.cidr).containsCIDR(r)"
               " || (has(p.ipBlock.except) && p.ipBlock.except.exists(e, cidr(e).containsCIDR(r)))))")
    return f"!has(p.namespaceSelector) && (!has(p.ipBlock) || ({covered}))"


@dataclass(frozen=True)
class AdmissionPolicy:
    name: str
    spec: dict


def admission_policies(service_controllers: tuple[str, ...] = (),
                       system_taint_keys: tuple[str, ...] = ()) -> list[AdmissionPolicy]:
    """The ValidatingAdmissionPolicies for tenant namespaces. `service_controllers`: usernames
    of platform controllers that create ExternalName Services in tenant namespaces on a
    tenant's behalf (Knative, KServe); `system_taint_keys`: the system pool's taints, which
    tenant pods may not tolerate."""

    def rules(group: str, resources: list[str], operations=("CREATE", "UPDATE"), version="v1") -> dict:
        return {"resourceRules": [{"apiGroups": [group], "apiVersions": [version], "operations": list(operations),
                                   "resources": resources}]}

    def check(expression: str, message: str, reason: str = "Forbidden") -> dict:
        return {"expression": expression, "message": message, "reason": reason}

    system_keys = sorted({*SYSTEM_TAINT_KEYS, *system_taint_keys})
    tolerations = "(has(object.spec.tolerations) ? object.spec.tolerations : [])"
    env_ok = (f"(!has(c.env) || c.env.all(e, e.name != '{VISIBLE_DEVICES}'))"
              f" && (!has(c.envFrom) || c.envFrom.all(f, !has(f.prefix) || f.prefix == ''"
              f" || !'{VISIBLE_DEVICES}'.startsWith(f.prefix)))")
    pods = {
        "failurePolicy": "Fail",
        "matchConstraints": rules("", ["pods", "pods/ephemeralcontainers"]),
        "variables": [{"name": "tolerations", "expression": tolerations}],
        "validations": [
            # The Priority admission plugin has resolved priorityClassName to spec.priority by
            # now, so this holds for any class, critical or made up by a cloud add-on.
            check("!has(object.spec.priority) || object.spec.priority <= 0",
                  "tenant pods run at the default priority (0): a priority class would let them preempt other "
                  "tenants and the platform's controllers"),
            check("variables.tolerations.all(t, has(t.key) && t.key != '')",
                  "tenant pods may not tolerate every taint (a toleration without a key)"),
            check(f"variables.tolerations.all(t, !has(t.key) || !(t.key in {_quoted(system_keys)}))",
                  "the system pool is for the platform's controllers: tenant pods may not tolerate its taint"),
            check(f"!variables.tolerations.exists(t, has(t.key) && t.key == '{GPU_RESOURCE}') || {_requests_gpu()}",
                  f"a pod that tolerates the {GPU_RESOURCE} taint must request {GPU_RESOURCE}: GPU nodes are for "
                  "GPU work, within the tenant's GPU quota"),
            check(_containers_all(env_ok),
                  f"{VISIBLE_DEVICES} may not be set by tenant pods: the device plugin decides which GPUs a "
                  "container sees"),
        ],
    }
    config_keys = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                "operations": ["CREATE", "UPDATE"],
                                                "resources": ["configmaps", "secrets"]}]},
        "validations": [check(f"!has(object.data) || !('{VISIBLE_DEVICES}' in object.data)",
                              f"a ConfigMap or Secret key {VISIBLE_DEVICES} would set it through envFrom")],
    }
    services = {
        "failurePolicy": "Fail",
        "matchConstraints": rules("", ["services"]),
        "validations": [
            check("!has(object.spec.type) || object.spec.type != 'ExternalName'",
                  "ExternalName Services in tenant namespaces make the mesh's gateways and sidecars call "
                  "another host with their own identity"),
            check("!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                  "Service externalIPs intercept traffic to any address (CVE-2020-8554)"),
            check("!has(object.spec.type) || !(object.spec.type in ['LoadBalancer', 'NodePort'])",
                  "tenants reach the outside only through the platform's ingress gateway"),
        ],
    }
    if service_controllers:
        services["matchConditions"] = [{
            "name": "not-a-platform-controller",
            "expression": f"!(request.userInfo.username in {_quoted(sorted(service_controllers))})",
        }]
    subject = [{"name": "tenant-subject", "expression": TENANT_SUBJECT}]
    network = {
        "failurePolicy": "Fail",
        "matchConstraints": rules("networking.k8s.io", ["networkpolicies"]),
        "matchConditions": subject,
        "variables": [{"name": "internal", "expression": _quoted(INTERNAL_CIDRS)}],
        "validations": [check(
            "!has(object.spec.egress) || object.spec.egress.all(r, has(r.to) && size(r.to) > 0"
            f" && r.to.all(p, {_egress_peer_ok()}))",
            "tenant NetworkPolicies may open egress only to pods of their own namespace or to public addresses: "
            "every egress rule names its peers, no namespaceSelector, and an ipBlock that covers private, "
            f"link-local or metadata addresses lists them in `except` ({', '.join(INTERNAL_CIDRS)})",
        )],
    }

    def unowned(o: str) -> str:
        return f"({o} == null || !has({o}.metadata.labels) || !('{LABEL_OWNER}' in {o}.metadata.labels))"

    platform_objects = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                                                "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["*"]}]},
        "matchConditions": subject,
        "validations": [check(
            f"{unowned('oldObject')} && {unowned('object')}",
            f"objects labelled {LABEL_OWNER}={OWNER_PLATFORM} (quotas, limits, NetworkPolicies, queues, bindings) "
            "belong to the platform: tenants may not change, delete or imitate them",
        )],
    }
    return [AdmissionPolicy(NAME.format(n), spec) for n, spec in (
        ("pods", pods), ("config-keys", config_keys), ("services", services),
        ("network-policies", network), ("platform-objects", platform_objects))]


TENANT_NAMESPACES = {"matchExpressions": [{"key": LABEL_TENANT, "operator": "Exists"}]}


class TenantGuardrails(pulumi.ComponentResource):
    """The tenant roles and the admission policies of one cluster (see the module docstring)."""

    def __init__(self, name: str, service_controllers: tuple[str, ...] = (),
                 system_taint_keys: tuple[str, ...] = (), opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:tenancy:TenantGuardrails", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {LABEL_OWNER: OWNER_PLATFORM, "app.kubernetes.io/managed-by": "pulumi"}
        self.roles = [
            KubernetesObject(f"{name}-{role.removeprefix('ai-platform-')}", "rbac.authorization.k8s.io/v1",
                             "ClusterRole", {"name": role, "labels": labels}, {"rules": rules}, child)
            for role, rules in ROLES.items()
        ]
        self.policies = []
        self.bindings = []
        for policy in admission_policies(service_controllers, system_taint_keys):
            role = policy.name.removeprefix("ai-platform-")
            vap = KubernetesObject(f"{name}-{role}", "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy",
                                   {"name": policy.name, "labels": labels}, {"spec": policy.spec}, child)
            self.policies.append(vap)
            self.bindings.append(KubernetesObject(
                f"{name}-{role}-binding", "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding",
                {"name": policy.name, "labels": labels},
                {"spec": {"policyName": policy.name, "validationActions": ["Deny"],
                          "matchResources": {"namespaceSelector": TENANT_NAMESPACES}}},
                pulumi.ResourceOptions(parent=self, depends_on=[vap]),
            ))
        self.register_outputs({})
