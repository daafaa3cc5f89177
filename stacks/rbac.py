"""What a tenant's people may really do: RBAC evaluated offline over every Role, ClusterRole
and binding of a cluster (ours and what the charts render), aggregation included, and
checked against what a tenant must never be able to do.

Kubernetes RBAC is a union of grants: a chart that aggregates a ClusterRole into one we
bind, or binds something to `system:authenticated`, widens every tenant. Evaluating the
whole cluster's RBAC is the only way a chart upgrade cannot slip such a grant past review.
https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class Subject:
    username: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    verb: str
    group: str
    resource: str
    """`resource` or `resource/subresource`."""
    namespace: str | None
    """None: cluster-scoped (or every namespace)."""

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {self.group or 'core'}/{self.resource}{where}"


def labels_match(selector: dict, labels: dict) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against labels; {} matches all."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, values = e["key"], e.get("values") or []
        if not {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}[e["operator"]]:
            return False
    return True


class Rbac:
    """The RBAC objects of one cluster."""

    def __init__(self, objects: Iterable[dict]):
        self.objects = [o for o in objects if o.get("kind") in RBAC_KINDS
                        and str(o.get("apiVersion", "")).startswith("rbac.authorization.k8s.io/")]
        cluster_roles = {o["metadata"]["name"]: o for o in self.objects if o["kind"] == "ClusterRole"}
        self.cluster_roles: dict[str, list[dict]] = {}
        for name, role in cluster_roles.items():
            rules = list(role.get("rules") or [])
            # The aggregation controller fills an aggregated role with the rules of every
            # ClusterRole whose labels match one of its selectors.
            for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
                for other_name, other in cluster_roles.items():
                    if other_name != name and labels_match(selector, (other.get("metadata") or {}).get("labels") or {}):
                        rules += other.get("rules") or []
            self.cluster_roles[name] = rules
        self.roles = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o.get("rules") or []
                      for o in self.objects if o["kind"] == "Role"}
        # Bindings by subject, so a subject's grants cost its own bindings, not the cluster's.
        self.bindings: dict[tuple[str, str], list[dict]] = {}
        for b in self.objects:
            if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
                continue
            ns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
            for s in b.get("subjects") or []:
                kind, name = s.get("kind"), s.get("name")
                if kind == "ServiceAccount":
                    kind, name = "User", f"system:serviceaccount:{s.get('namespace') or ns}:{name}"
                self.bindings.setdefault((str(kind), str(name)), []).append(b)

    def grants(self, subject: Subject) -> list[tuple[str | None, dict, str]]:
        """(namespace or None for cluster-wide, rule, binding name) for every rule bound to `subject`."""
        out = []
        keys = [("User", subject.username), *(("Group", g) for g in subject.groups)]
        seen: set[int] = set()
        for b in (b for key in keys for b in self.bindings.get(key, [])):
            if id(b) in seen:
                continue
            seen.add(id(b))
            ns = b["metadata"].get("namespace") if b["kind"] == "RoleBinding" else None
            ref = b.get("roleRef") or {}
            rules = (self.cluster_roles.get(ref.get("name"), []) if ref.get("kind") == "ClusterRole"
                     else self.roles.get((ns, ref.get("name")), []))
            out += [(ns, rule, f"{b['kind']} {ns + '/' if ns else ''}{b['metadata']['name']}") for rule in rules]
        return out

    def allowed_by(self, subject: Subject, action: Action) -> list[str]:
        """The bindings that allow `action` to `subject` (empty: refused)."""
        return _allowed_by(self.grants(subject), action)


def _allowed_by(grants: list[tuple[str | None, dict, str]], action: Action) -> list[str]:
    return sorted({name for ns, rule, name in grants
                   if (ns is None or ns == action.namespace) and rule_allows(rule, action)})


def rule_allows(rule: dict, action: Action) -> bool:
    if rule.get("nonResourceURLs"):
        return False

    def has(values, value):
        return "*" in (values or []) or value in (values or [])

    resources = rule.get("resources") or []
    base = action.resource.split("/")[0]
    resource_ok = ("*" in resources or action.resource in resources
                   or ("/" in action.resource and f"{base}/*" in resources))
    return has(rule.get("verbs"), action.verb) and has(rule.get("apiGroups"), action.group) and resource_ok


WRITE_VERBS = ("create", "update", "patch", "delete")


def forbidden_actions(namespace: str, platform_namespaces: Iterable[str]) -> list[Action]:
    """What no tenant subject may do, in its own namespace or anywhere."""
    own = [
        *(Action(v, "networking.k8s.io", "ingresses", namespace) for v in ("create", "update", "patch")),
        *(Action("create", g, r, namespace) for g, r in (
            ("gateway.networking.k8s.io", "gateways"),
            ("networking.istio.io", "virtualservices"), ("networking.istio.io", "gateways"),
            ("networking.istio.io", "serviceentries"), ("networking.istio.io", "envoyfilters"),
            ("networking.istio.io", "destinationrules"), ("networking.istio.io", "sidecars"),
            ("security.istio.io", "authorizationpolicies"), ("security.istio.io", "peerauthentications"),
            ("security.istio.io", "requestauthentications"),
            ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
            ("", "endpoints"), ("discovery.k8s.io", "endpointslices"),
            ("", "resourcequotas"), ("", "limitranges"),
            ("kueue.x-k8s.io", "localqueues"), ("kueue.x-k8s.io", "workloads"),
            ("apps", "daemonsets"), ("policy", "poddisruptionbudgets"),
            ("", "serviceaccounts/token"),
        )),
        *(Action(v, "", "namespaces", namespace) for v in WRITE_VERBS),
        *(Action(v, "rbac.authorization.k8s.io", r, namespace) for v in ("bind", "escalate")
          for r in ("roles", "clusterroles")),
        *(Action("impersonate", g, r, None) for g, r in (("", "users"), ("", "groups"), ("", "serviceaccounts"))),
    ]
    cluster = [
        Action("create", g, r, None) for g, r in (
            ("rbac.authorization.k8s.io", "clusterroles"), ("rbac.authorization.k8s.io", "clusterrolebindings"),
            ("", "namespaces"), ("", "nodes"), ("scheduling.k8s.io", "priorityclasses"),
            ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
            ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
            ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("certificates.k8s.io", "certificatesigningrequests"),
            ("kueue.x-k8s.io", "clusterqueues"), ("kueue.x-k8s.io", "resourceflavors"),
        )
    ]
    elsewhere = [Action(v, "", r, ns) for ns in platform_namespaces for v, r in (
        ("get", "secrets"), ("list", "secrets"), ("create", "pods"), ("create", "configmaps"))]
    return own + cluster + elsewhere


def tenant_subjects(objects: Iterable[dict]) -> dict[str, list[Subject]]:
    """Per tenant namespace, the subjects the platform binds there (each group as a user of
    that group, plus `system:authenticated`) and a workload ServiceAccount of the namespace."""
    out: dict[str, list[Subject]] = {}
    for o in objects:
        labels = (o.get("metadata") or {}).get("labels") or {}
        if o.get("kind") != "RoleBinding" or "ai-platform.io/tenant" not in labels:
            continue
        ns = o["metadata"]["namespace"]
        for s in o.get("subjects") or []:
            if s.get("kind") == "Group":
                out.setdefault(ns, []).append(Subject(f"member-of-{s['name']}", (s["name"], AUTHENTICATED)))
        sa = Subject(f"system:serviceaccount:{ns}:default", ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                                                             AUTHENTICATED))
        if sa not in out.setdefault(ns, []):
            out[ns].append(sa)
    return out


def violations(objects: list[dict], platform_namespaces: Iterable[str]) -> list[str]:
    """Every forbidden action some tenant subject is allowed, with the bindings that allow it."""
    rbac = Rbac(objects)
    platform_namespaces = sorted(platform_namespaces)
    actions = forbidden_actions(OWN, platform_namespaces)
    # Subjects of different tenants usually hold the same grants up to their namespace:
    # evaluate each distinct set once, with the tenant's namespace as a placeholder.
    cache: dict[frozenset, list[str]] = {}
    out = []
    for ns, subjects in sorted(tenant_subjects(objects).items()):
        for subject in subjects:
            grants = [(OWN if g_ns == ns else g_ns, rule, name.replace(f" {ns}/", f" {OWN}/"))
                      for g_ns, rule, name in rbac.grants(subject)]
            key = frozenset((g_ns, id(rule), name) for g_ns, rule, name in grants)
            if key not in cache:
                cache[key] = [f"may {action} (through {', '.join(by)})"
                              for action in actions if (by := _allowed_by(grants, action))]
            out += [f"tenant {ns}: {subject.username} {v.replace(OWN, ns)}" for v in cache[key]]
    return out


OWN = "<tenant>"  # the subject's own namespace, while evaluating


SUPERUSER_GROUP = "system:masters"


def authorizer(objects: Iterable[dict]):
    """An `Authorize` callback for stacks.admission: RBAC over `objects`, with Kubernetes'
    `system:masters` as superusers (the deployer's cluster-admin)."""
    rbac = Rbac(objects)

    def authorize(user, verb: str, group: str, resource: str, namespace: str) -> bool:
        if SUPERUSER_GROUP in user.groups:
            return True
        subject = Subject(user.username, (*user.groups, AUTHENTICATED))
        return bool(rbac.allowed_by(subject, Action(verb, group, resource, namespace or None)))

    return authorize
