"""Cloud bursting with Kueue MultiKueue: a manager dispatches tenants' batch work to
worker clusters (the primary first, then the burst cluster on another provider).

Each worker gets a dedicated ServiceAccount with exactly the RBAC MultiKueue needs (as in
Kueue's create-multikueue-kubeconfig.sh; writes only in tenant namespaces) and a rotatable
token; the manager gets, per worker, a token kubeconfig in a Secret (no cloud CLI: the manager cannot run one) and a
MultiKueueCluster, plus one MultiKueueConfig, one AdmissionCheck and the ClusterQueues.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .addons.common import KubernetesObject
from .addons.kueue import API_VERSION, CPU_FLAVOR, FRAMEWORKS, TenantQuota
from .clusters.base import GPU_RESOURCE, Cluster

NAMESPACE = "kueue-system"
SERVICE_ACCOUNT = "multikueue-sa"
ADMISSION_CHECK = "multikueue"
MULTIKUEUE_CONFIG = "multikueue"
CONTROLLER_NAME = "kueue.x-k8s.io/multikueue"
BURST_COHORT = "ai-platform-multikueue"
GPU_FLAVOR = "multikueue-gpu"
JOB_VERBS = ["create", "delete", "get", "list", "watch"]
READ_ROLE = f"{SERVICE_ACCOUNT}-role"
WRITE_ROLE = f"{SERVICE_ACCOUNT}-write"


def _job_kind(group: str, resource: str, *extra: str) -> list[dict]:
    return [{"apiGroups": [group], "resources": [resource], "verbs": [*JOB_VERBS, *extra]},
            {"apiGroups": [group], "resources": [f"{resource}/status"], "verbs": ["get"]}]


# What MultiKueue does on a worker, from Kueue v0.19.2's own worker role
# (site/static/examples/multikueue/create-multikueue-kubeconfig.sh): Workloads always, and
# per job integration the kind it mirrors there.
KUEUE_WORKER_RULES = [
    {"apiGroups": ["kueue.x-k8s.io"], "resources": ["workloads"], "verbs": [*JOB_VERBS, "update", "patch"]},
    {"apiGroups": ["kueue.x-k8s.io"], "resources": ["clusterqueues", "localqueues"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["kueue.x-k8s.io"], "resources": ["workloads/status"], "verbs": ["get", "patch", "update"]},
]
INTEGRATION_RULES: dict[str, list[dict]] = {
    "batch/job": _job_kind("batch", "jobs"),
    "pod": [{"apiGroups": [""], "resources": ["pods"], "verbs": list(JOB_VERBS)}],
    "statefulset": _job_kind("apps", "statefulsets"),
    "leaderworkerset.x-k8s.io/leaderworkerset": _job_kind("leaderworkerset.x-k8s.io", "leaderworkersets"),
    "jobset.x-k8s.io/jobset": _job_kind("jobset.x-k8s.io", "jobsets"),
    "kubeflow.org/tfjob": _job_kind("kubeflow.org", "tfjobs"),
    "kubeflow.org/paddlejob": _job_kind("kubeflow.org", "paddlejobs"),
    "kubeflow.org/pytorchjob": _job_kind("kubeflow.org", "pytorchjobs"),
    "kubeflow.org/xgboostjob": _job_kind("kubeflow.org", "xgboostjobs"),
    "kubeflow.org/mpijob": _job_kind("kubeflow.org", "mpijobs"),
    "ray.io/rayjob": _job_kind("ray.io", "rayjobs"),
    "ray.io/raycluster": _job_kind("ray.io", "rayclusters", "update", "patch"),
    "ray.io/rayservice": _job_kind("ray.io", "rayservices"),
    "workload.codeflare.dev/appwrapper": _job_kind("workload.codeflare.dev", "appwrappers"),
    # Kueue has a MultiKueue adapter for TrainJob (pkg/controller/jobs/trainjob) that the
    # script does not list yet: the same verbs as every other job kind.
    "trainer.kubeflow.org/trainjob": _job_kind("trainer.kubeflow.org", "trainjobs"),
    # No MultiKueue adapter: Deployments are never dispatched, so no access.
    "deployment": [],
}


def worker_rules(frameworks: tuple[str, ...]) -> list[dict]:
    """The worker role for the job integrations Kueue runs with (nothing for kinds it never dispatches)."""
    unknown = [f for f in frameworks if f not in INTEGRATION_RULES]
    if unknown:
        raise ValueError(f"no MultiKueue worker rules for integrations {unknown}")
    return [*KUEUE_WORKER_RULES, *(rule for f in frameworks for rule in INTEGRATION_RULES[f])]


WORKER_RULES = worker_rules(FRAMEWORKS)
_QUANTITY = re.compile(r"^([0-9.]+)(.*)$")


def scale_quantity(quantity: str, factor: int) -> str:
    """`factor` times a Kubernetes quantity, keeping its unit ("64Gi" x 2 = "128Gi")."""
    number, unit = _QUANTITY.match(str(quantity)).groups()
    value = float(number) * factor
    return f"{int(value) if value.is_integer() else value}{unit}"


def token_kubeconfig(name: str, server: str, ca_data: str, token: str) -> str:
    """A kubeconfig that authenticates with a bearer token only: no exec plugin, no cloud CLI."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{SERVICE_ACCOUNT}"}}],
            "current-context": name,
            "users": [{"name": f"{name}-{SERVICE_ACCOUNT}", "user": {"token": token}}],
        }
    )


READ_VERBS = ("get", "list", "watch")


def split_rules(rules: list[dict]) -> tuple[list[dict], list[dict]]:
    """(read, write): each rule's get/list/watch, and its other verbs."""
    read = [{**r, "verbs": [v for v in r["verbs"] if v in READ_VERBS]} for r in rules]
    write = [{**r, "verbs": [v for v in r["verbs"] if v not in READ_VERBS]} for r in rules]
    return [r for r in read if r["verbs"]], [r for r in write if r["verbs"]]


class WorkerAccess(pulumi.ComponentResource):
    """On a worker: the MultiKueue ServiceAccount, Kueue's own worker rules for the
    integrations we enable, and its token. `kubeconfig` is the secret token kubeconfig the
    manager uses.

    Reads are cluster-wide because MultiKueue watches Workloads and jobs of every namespace
    with one label-selected watch (pkg/controller/admissionchecks/multikueue/multikueuecluster.go,
    `establishWatch`); every write verb is bound only in the tenants' namespaces, so the token
    cannot create a Job in kube-system or any platform namespace.

    The token is a `kubernetes.io/service-account-token` Secret named with `token_generation`:
    raising it (config `bursting.workerTokenGeneration`) makes `pulumi up` create a new token,
    hand it to the manager and then delete the old Secret, which revokes the old token."""

    def __init__(self, name: str, worker: Cluster, namespaces: tuple[str, ...], depends_on: list[pulumi.Resource],
                 token_generation: int = 1, opts: pulumi.ResourceOptions | None = None):
        """`namespaces`: the tenant namespaces MultiKueue may create work in; `depends_on`: the
        worker's Kueue release (it creates the kueue-system namespace) and those namespaces."""
        super().__init__("ai-platform:bursting:WorkerAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        meta = k8s.meta.v1.ObjectMetaArgs
        read, write = split_rules(WORKER_RULES)
        subject = [k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=SERVICE_ACCOUNT, namespace=NAMESPACE)]

        def role_ref(role: str):
            return k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role)

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta(name=SERVICE_ACCOUNT, namespace=NAMESPACE), opts=child)
        self.role = k8s.rbac.v1.ClusterRole(
            f"{name}-role", metadata=meta(name=READ_ROLE), rules=read, opts=child)
        self.binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding", metadata=meta(name=f"{SERVICE_ACCOUNT}-crb"), role_ref=role_ref(READ_ROLE),
            subjects=subject, opts=child)
        self.write_role = k8s.rbac.v1.ClusterRole(
            f"{name}-write-role", metadata=meta(name=WRITE_ROLE), rules=write, opts=child)
        self.namespace_bindings = [
            k8s.rbac.v1.RoleBinding(
                f"{name}-{ns}-binding", metadata=meta(name=SERVICE_ACCOUNT, namespace=ns),
                role_ref=role_ref(WRITE_ROLE), subjects=subject, opts=child)
            for ns in namespaces
        ]
        # A long-lived token: the API server fills `data.token` of this Secret.
        self.token_secret = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=meta(name=f"{SERVICE_ACCOUNT}-token-{token_generation}", namespace=NAMESPACE,
                          annotations={"kubernetes.io/service-account.name": SERVICE_ACCOUNT}),
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service_account]),
        )
        token = self.token_secret.data.apply(lambda d: base64.b64decode((d or {}).get("token", "")).decode())
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(worker.api_server, worker.certificate_authority, token).apply(
                lambda a: token_kubeconfig(worker.name, a[0], a[1], a[2])
            )
        )
        self.register_outputs({})


@dataclass(frozen=True)
class WorkerRef:
    name: str
    kubeconfig: pulumi.Output[str]


def manager_cluster_queue(tenant: TenantQuota, workers: int, cohort: str) -> dict:
    """The manager's queue for a tenant: as much quota as all its workers together."""
    return {
        "cohortName": cohort,
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": tenant.name}},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [
            {"coveredResources": ["cpu", "memory"], "flavors": [{"name": CPU_FLAVOR, "resources": [
                {"name": "cpu", "nominalQuota": scale_quantity(tenant.cpu, workers)},
                {"name": "memory", "nominalQuota": scale_quantity(tenant.memory, workers)},
            ]}]},
            {"coveredResources": [GPU_RESOURCE], "flavors": [{"name": GPU_FLAVOR, "resources": [
                {"name": GPU_RESOURCE, "nominalQuota": tenant.gpus * workers,
                 "borrowingLimit": tenant.borrow_gpus * workers},
            ]}]},
        ],
        # One MultiKueue check, for every flavor (Kueue deactivates per-flavor MultiKueue checks).
        "admissionChecksStrategy": {"admissionChecks": [{"name": ADMISSION_CHECK}]},
        "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
    }


class MultiKueue(pulumi.ComponentResource):
    """The manager side: worker kubeconfig Secrets, MultiKueueClusters in dispatch order,
    the MultiKueueConfig, the AdmissionCheck, and per tenant a ClusterQueue whose quota is
    the sum of its workers' (named `<tenant><queue_suffix>`)."""

    def __init__(
        self,
        name: str,
        manager: Cluster,
        workers: list[WorkerRef],
        tenants: tuple[TenantQuota, ...],
        kueue_release: pulumi.Resource,
        queue_suffix: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ):
        if manager.name in {w.name for w in workers}:
            raise ValueError(f"cluster {manager.name!r} cannot be the MultiKueue manager and one of its workers")
        if not workers:
            raise ValueError("MultiKueue needs at least one worker")
        super().__init__("ai-platform:bursting:MultiKueue", name, None, opts)
        after_kueue = pulumi.ResourceOptions(parent=self, depends_on=[kueue_release])
        meta = k8s.meta.v1.ObjectMetaArgs

        def kueue_object(role: str, kind: str, obj_name: str, spec: dict, **extra) -> KubernetesObject:
            return KubernetesObject(f"{name}-{role}", API_VERSION, kind, meta(name=obj_name), {"spec": spec},
                                    pulumi.ResourceOptions.merge(after_kueue, pulumi.ResourceOptions(**extra)))

        self.kubeconfig_secrets, self.clusters = [], []
        for worker in workers:
            secret = k8s.core.v1.Secret(
                f"{name}-{worker.name}-kubeconfig",
                metadata=meta(name=f"multikueue-{worker.name}", namespace=NAMESPACE),
                type="Opaque",
                string_data={"kubeconfig": worker.kubeconfig},
                opts=after_kueue,
            )
            self.kubeconfig_secrets.append(secret)
            self.clusters.append(kueue_object(
                f"cluster-{worker.name}", "MultiKueueCluster", worker.name,
                {"clusterSource": {"kubeConfig": {"locationType": "Secret", "location": f"multikueue-{worker.name}"}}},
                depends_on=[kueue_release, secret],
            ))
        # The Incremental dispatcher nominates workers in this order: the primary first.
        self.config = kueue_object("config", "MultiKueueConfig", MULTIKUEUE_CONFIG,
                                   {"clusters": [w.name for w in workers]})
        self.admission_check = kueue_object(
            "admission-check", "AdmissionCheck", ADMISSION_CHECK,
            {"controllerName": CONTROLLER_NAME,
             "parameters": {"apiGroup": "kueue.x-k8s.io", "kind": "MultiKueueConfig", "name": MULTIKUEUE_CONFIG}},
        )
        self.flavor = KubernetesObject(f"{name}-flavor", API_VERSION, "ResourceFlavor", meta(name=GPU_FLAVOR),
                                       {"spec": {}}, after_kueue)
        cohort = BURST_COHORT if queue_suffix else "ai-platform"
        self.cluster_queues = {
            t.name: kueue_object(f"queue-{t.name}", "ClusterQueue", f"{t.name}{queue_suffix}",
                                 manager_cluster_queue(t, len(workers), cohort))
            for t in tenants
        }
        self.register_outputs({"workers": [w.name for w in workers]})
