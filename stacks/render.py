"""Render every Helm release with its pinned chart and check that what comes out would
be admitted and scheduled on the cluster it goes to.

- Rendering: Helm's own engine (helm-python-sdk, Helm v4's Go SDK), with the exact
  values, release name and namespace the program sets, from the pinned chart sources in
  `<upstream>/charts-src/<chart>-<version>` (what `helm pull` gives, dependencies unpacked).
- Admission: Pod Security Standards of the pod's namespace (the labels we set, or
  Kubernetes' default `privileged` for namespaces we do not create), and GKE's rule that
  pods at `system-node-critical`/`system-cluster-critical` outside kube-system need a
  ResourceQuota scoped to that PriorityClass in their namespace.
- Scheduling: every non-DaemonSet pod must fit some node pool (node selector, required
  node affinity, tolerations for all of the pool's NoSchedule/NoExecute taints).

Charts only ever see what Helm renders: pods their operators create later (the GPU
Operator's daemonsets, Knative's deployments) are checked where the program configures
them, in the add-on tests.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.addons import versions
from components.clusters.base import CRITICAL_PRIORITY_CLASSES

from . import rbac
from .engine import Registration, Run, plain
from .validate import HELM_RELEASE, Finding

_SPLIT = re.compile(r"(?:^|\s*\n)---\s*")
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod", "CronJob"}
# Pod Security "restricted" (Kubernetes 1.33): allowed volume types and added capabilities.
_RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
_BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                          "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Go YAML reads a bare `=` as a string (kube-prometheus-stack's rules have them)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@dataclass(frozen=True)
class Pool:
    """A node pool as the scheduler sees it."""

    name: str
    labels: dict[str, str]
    taints: tuple[tuple[str, str, str], ...]
    """(key, value, effect)."""


@dataclass
class RenderResult:
    findings: list[Finding] = field(default_factory=list)
    releases: int = 0
    pods: int = 0
    tenant_subjects: int = 0
    """Tenant subjects whose effective RBAC (ours and the charts', aggregation included) was checked."""
    skipped: list[str] = field(default_factory=list)


def chart_dir(upstream: Path, chart: str, version: str) -> Path:
    return upstream / "charts-src" / versions.Chart(chart, version, None, None).source


@functools.cache
def _load_chart(path: str):
    import helm_python

    return helm_python.Chart.load(path)


def render_release(upstream: Path, inputs: dict) -> list[dict]:
    """The manifests `helm install` would apply for this release (templates only; `crds/`
    are installed, not rendered)."""
    chart = _load_chart(str(chart_dir(upstream, str(inputs["chart"]), str(inputs["version"]))))
    out = chart.render(values=inputs.get("values") or {}, name=inputs.get("name"), namespace=inputs.get("namespace"))
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for part in _SPLIT.split(text):
            if part.strip():
                doc = yaml.load(part, Loader=_Loader)
                if isinstance(doc, dict) and doc.get("kind"):
                    docs.append(doc)
    return docs


def pod_specs(doc: dict) -> Iterator[dict]:
    kind = doc.get("kind")
    if kind not in _WORKLOADS:
        return
    spec = doc.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind == "CronJob":
        yield ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    else:
        yield (spec.get("template") or {}).get("spec") or {}


def _containers(pod: dict) -> list[dict]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or []), *(pod.get("ephemeralContainers") or [])]


def pss_problems(pod: dict, level: str) -> list[str]:
    """Why Pod Security `level` would refuse this pod spec (empty: admitted)."""
    if level == "privileged":
        return []
    problems = []
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"{key}: true")
    for vol in pod.get("volumes") or []:
        if "hostPath" in vol:
            problems.append(f"hostPath volume {vol.get('name')!r}")
        elif level == "restricted":
            kinds = set(vol) - {"name"}
            if kinds and not kinds <= _RESTRICTED_VOLUMES:
                problems.append(f"volume {vol.get('name')!r} of type {sorted(kinds)}")
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append("pod seccompProfile Unconfined")
    for c in _containers(pod):
        name = c.get("name")
        csc = c.get("securityContext") or {}
        caps = csc.get("capabilities") or {}
        if csc.get("privileged"):
            problems.append(f"container {name!r} is privileged")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append(f"container {name!r} uses a hostPort")
        added = set(caps.get("add") or [])
        allowed = {"NET_BIND_SERVICE"} if level == "restricted" else _BASELINE_CAPABILITIES
        if added - allowed:
            problems.append(f"container {name!r} adds capabilities {sorted(added - allowed)}")
        if (csc.get("seccompProfile") or {}).get("type") == "Unconfined":
            problems.append(f"container {name!r} seccompProfile Unconfined")
        if level != "restricted":
            continue
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name!r} must set allowPrivilegeEscalation: false")
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"container {name!r} must drop ALL capabilities")
        if not csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            problems.append(f"container {name!r} must set runAsNonRoot: true (pod or container)")
        if csc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"container {name!r} runs as UID 0")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"container {name!r} needs seccompProfile RuntimeDefault (pod or container)")
    return problems


def _tolerates(tolerations: list[dict], taint: tuple[str, str, str]) -> bool:
    key, value, effect = taint
    for t in tolerations or []:
        if t.get("effect") not in (None, "", effect):
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and t.get("key") in (None, "", key):
            return True
        if op == "Equal" and t.get("key") == key and str(t.get("value", "")) == value:
            return True
    return False


def _expression(labels: dict[str, str], expr: dict) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return True  # Gt/Lt: not used on our pools' labels


def fits(pod: dict, pool: Pool) -> bool:
    """Whether the scheduler may place this pod on a node of `pool` (ignoring resources)."""
    selector = pod.get("nodeSelector") or {}
    if any(pool.labels.get(k) != str(v) for k, v in selector.items()):
        return False
    required = (((pod.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    if required and not any(all(_expression(pool.labels, e) for e in term.get("matchExpressions") or [])
                            for term in required):
        return False
    return all(_tolerates(pod.get("tolerations") or [], t) for t in pool.taints if t[2] != "PreferNoSchedule")


# -- what the plan registered: pools, namespaces, quotas per cluster -----------------------

_BASE_LABELS = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def _taint(text: str) -> tuple[str, str, str]:
    key_value, _, effect = text.partition(":")
    key, _, value = key_value.partition("=")
    return key, value, effect


def pools_of(run: Run, cluster: Registration) -> list[Pool]:
    """The node pools a cluster component registered, with the labels and taints their nodes get."""
    pools = []
    for r in run.resources:
        if r.parent != cluster.urn:
            continue
        p = plain(r.inputs)
        if r.type == "aws:eks/nodeGroup:NodeGroup":
            taints = tuple((t["key"], t.get("value", ""), _EFFECTS[t["effect"]]) for t in p.get("taints") or [])
            pools.append(Pool(r.name, {**_BASE_LABELS, **(p.get("labels") or {})}, taints))
        elif r.type == "gcp:container/nodePool:NodePool":
            n = p.get("nodeConfig") or {}
            taints = tuple((t["key"], t.get("value", ""), _EFFECTS[t["effect"]]) for t in n.get("taints") or [])
            pools.append(Pool(r.name, {**_BASE_LABELS, **(n.get("labels") or {})}, taints))
        elif r.type == "azure-native:containerservice:ManagedCluster":
            for profile in p.get("agentPoolProfiles") or []:
                pools.append(Pool(f"{r.name}/{profile.get('name')}", {**_BASE_LABELS, **(profile.get("nodeLabels") or {})},
                                  tuple(_taint(t) for t in profile.get("nodeTaints") or [])))
        elif r.type == "azure-native:containerservice:AgentPool":
            pools.append(Pool(r.name, {**_BASE_LABELS, **(p.get("nodeLabels") or {})},
                              tuple(_taint(t) for t in p.get("nodeTaints") or [])))
    return pools


def check(run: Run, upstream: Path | None) -> RenderResult:
    """Render every release of the run and check admission and scheduling of its pods."""
    result = RenderResult()
    releases = run.by_type(HELM_RELEASE)
    if upstream is None or not (upstream / "charts-src").is_dir():
        result.skipped.append(f"{len(releases)} Helm releases not rendered: chart sources not found "
                              f"(`<upstream>/charts-src`; see the README)")
        return result
    objects: dict[str, list[dict]] = {}
    for r in run.resources:
        if r.custom and r.type.startswith("kubernetes:") and r.provider_urn:
            owner = run.cluster_of(r)
            if owner is not None:
                objects.setdefault(owner.urn, []).append(plain(r.inputs))
    facts: dict[str, _ClusterFacts] = {}
    rendered_rbac: dict[str, list[dict]] = {}
    for rel in releases:
        cluster = run.cluster_of(rel)
        if cluster is None:
            continue
        inputs = plain(rel.inputs)
        src = chart_dir(upstream, str(inputs.get("chart")), str(inputs.get("version")))
        if not (src / "Chart.yaml").is_file():
            result.findings.append(Finding(rel.urn, "render", f"no chart source {src.name} in the upstream data"))
            continue
        try:
            docs = render_release(upstream, inputs)
        except Exception as exc:  # noqa: BLE001 - Helm's own error is the finding
            result.findings.append(Finding(rel.urn, "render", f"helm template fails: {exc}"))
            continue
        result.releases += 1
        if cluster.urn not in facts:
            on = objects.get(cluster.urn, [])
            facts[cluster.urn] = _ClusterFacts(
                pools_of(run, cluster), _namespace_levels(on), on,
                str((run.component_outputs.get(cluster.urn) or {}).get("cloud")))
        result.findings += _check_release(rel, inputs, docs, facts[cluster.urn], result)
        rendered_rbac.setdefault(cluster.urn, []).extend(
            _in_namespace(d, str(inputs.get("namespace"))) for d in docs if d.get("kind") in rbac.RBAC_KINDS)
    for urn, on in objects.items():
        result.findings += _check_rbac(urn, on + rendered_rbac.get(urn, []), result)
    return result


def _in_namespace(doc: dict, namespace: str) -> dict:
    """A rendered namespaced object without a namespace lands in the release's."""
    if doc["kind"] in ("Role", "RoleBinding") and not (doc.get("metadata") or {}).get("namespace"):
        return {**doc, "metadata": {**doc.get("metadata", {}), "namespace": namespace}}
    return doc


def _check_rbac(cluster_urn: str, objects: list[dict], result: RenderResult) -> list[Finding]:
    """Tenants' effective permissions on one cluster against what they must never do."""
    platform = {"kube-system", *(o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace"
                                 and "ai-platform.io/tenant" not in (o["metadata"].get("labels") or {}))}
    result.tenant_subjects += sum(len(v) for v in rbac.tenant_subjects(objects).values())
    return [Finding(cluster_urn, "rbac", v) for v in rbac.violations(objects, platform)]


@dataclass(frozen=True)
class _ClusterFacts:
    """What admission and scheduling depend on, per cluster (computed once)."""

    pools: list[Pool]
    levels: dict[str, str]
    objects: list[dict]
    cloud: str


def _namespace_levels(objects: list[dict]) -> dict[str, str]:
    levels = {}
    for o in objects:
        if o.get("kind") == "Namespace":
            meta = o.get("metadata") or {}
            levels[meta.get("name")] = (meta.get("labels") or {}).get("pod-security.kubernetes.io/enforce", "privileged")
    return levels


def _priority_quota(objects: list[dict], namespace: str, priority: str) -> bool:
    for o in objects:
        if o.get("kind") != "ResourceQuota" or (o.get("metadata") or {}).get("namespace") != namespace:
            continue
        for e in ((o.get("spec") or {}).get("scopeSelector") or {}).get("matchExpressions") or []:
            if e.get("scopeName") == "PriorityClass" and e.get("operator") == "In" and priority in (e.get("values") or []):
                return True
    return False


def _check_release(rel: Registration, inputs: dict, docs: list[dict], cluster: _ClusterFacts,
                   result: RenderResult) -> list[Finding]:
    findings = []
    pools, levels, objects, cloud = cluster.pools, cluster.levels, cluster.objects, cluster.cloud
    release_ns = str(inputs.get("namespace"))
    for doc in docs:
        meta = doc.get("metadata") or {}
        ns = meta.get("namespace") or release_ns
        what = f"{doc['kind']} {ns}/{meta.get('name')}"
        for pod in pod_specs(doc):
            result.pods += 1
            level = levels.get(ns, "privileged")
            for problem in pss_problems(pod, level):
                findings.append(Finding(rel.urn, "admission", f"{what}: Pod Security {level!r} of namespace {ns} "
                                        f"refuses it: {problem}"))
            priority = pod.get("priorityClassName")
            if (cloud == "gcp" and priority in CRITICAL_PRIORITY_CLASSES and ns != "kube-system"
                    and not _priority_quota(objects, ns, priority)):
                findings.append(Finding(rel.urn, "admission", f"{what}: GKE admits priority {priority} outside "
                                        f"kube-system only with a ResourceQuota scoped to it in {ns}"))
            if doc["kind"] == "DaemonSet":
                # A node agent that tolerates some of a pool's taints is meant for that pool:
                # it must tolerate all of them (the cloud's own spot taint included).
                for pool in pools:
                    hard = [t for t in pool.taints if t[2] != "PreferNoSchedule"]
                    some = [t for t in hard if _tolerates(pod.get("tolerations") or [], t)]
                    if some and len(some) < len(hard):
                        missing = sorted({t[0] for t in hard} - {t[0] for t in some})
                        findings.append(Finding(rel.urn, "scheduling", f"{what}: tolerates some taints of pool "
                                                f"{pool.name} but not {missing}: it never runs there"))
            elif pools and not any(fits(pod, p) for p in pools):
                findings.append(Finding(rel.urn, "scheduling", f"{what}: fits no node pool (selector "
                                        f"{pod.get('nodeSelector') or {}}, tolerations "
                                        f"{[t.get('key') for t in pod.get('tolerations') or []]}); pools: "
                                        + ", ".join(f"{p.name} taints {[t[0] for t in p.taints]}" for p in pools)))
    return findings


__all__ = ["Pool", "check", "fits", "pod_specs", "pss_problems", "render_release"]

