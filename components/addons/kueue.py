"""Kueue: GPU quotas and fair sharing. One ResourceFlavor per GPU pool, one ClusterQueue
per tenant in a shared cohort, WorkloadPriorityClasses; tenants get a LocalQueue each."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ..clusters.base import GPU_RESOURCE, LABEL_POOL, Cluster, GpuPool
from ..tenancy import LABEL_TENANT
from . import versions
from .common import KubernetesObject, namespace, release, system_placement

NAMESPACE = "kueue-system"
API_VERSION = "kueue.x-k8s.io/v1beta2"
COHORT = "ai-platform"
CPU_FLAVOR = "default"
PRIORITY_CLASSES = {"platform-high": 1000, "platform-normal": 100, "platform-low": 10}

# The chart's default Configuration with fair sharing turned on, and every job and pod in a
# tenant namespace managed by Kueue, queue label or not (tenants have a LocalQueue `default`,
# which Kueue's LocalQueueDefaulting assigns): no GPU work outside the queues. Platform
# namespaces are not selected, so Kueue never gates the platform's own pods. The chart copies
# the selector to its webhooks (templates/webhook/manifests.yaml).
MANAGER_CONFIG = f"""\
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
health:
  healthProbeBindAddress: :8081
metrics:
  bindAddress: :8443
webhook:
  port: 9443
leaderElection:
  leaderElect: true
  resourceName: c1f6bfd2.kueue.x-k8s.io
controller:
  groupKindConcurrency:
    Job.batch: 5
    Pod: 5
    Workload.kueue.x-k8s.io: 10
    LocalQueue.kueue.x-k8s.io: 5
    ClusterQueue.kueue.x-k8s.io: 5
    ResourceFlavor.kueue.x-k8s.io: 1
clientConnection:
  qps: 300
  burst: 500
integrations:
  frameworks:
  - "batch/job"
  - "kubeflow.org/mpijob"
  - "ray.io/rayjob"
  - "ray.io/raycluster"
  - "jobset.x-k8s.io/jobset"
  - "trainer.kubeflow.org/trainjob"
  - "pod"
  - "deployment"
  - "statefulset"
  - "leaderworkerset.x-k8s.io/leaderworkerset"
fairSharing:
  preemptionStrategies: [LessThanOrEqualToFinalShare, LessThanInitialShare]
manageJobsWithoutQueueName: true
managedJobsNamespaceSelector:
  matchExpressions:
  - {{key: {LABEL_TENANT}, operator: Exists}}
"""


# The job integrations Kueue manages (and MultiKueue may dispatch), as configured above.
FRAMEWORKS: tuple[str, ...] = tuple(yaml.safe_load(MANAGER_CONFIG)["integrations"]["frameworks"])

# Nominate workers in MultiKueueConfig order, one per round (the primary first): the
# default step of 3 (Kueue 0.19, KEP-9270, gate MultiKueueIncrementalDispatcherConfig,
# beta and on) would nominate primary and burst together.
MULTIKUEUE_MANAGER_CONFIG = """\
multiKueue:
  dispatcherName: kueue.x-k8s.io/multikueue-dispatcher-incremental
  incrementalDispatcherConfig:
    stepSize: 1
"""


@dataclass(frozen=True)
class TenantQuota:
    """What a tenant may use, as Kueue and the namespace ResourceQuota both see it."""

    name: str
    gpus: int
    borrow_gpus: int
    cpu: str
    memory: str


def split_gpus(total: int, pools: tuple[GpuPool, ...]) -> dict[str, int]:
    """Split a tenant's nominal GPUs over the GPU flavors in proportion to each pool's
    capacity (max nodes x `nvidia.com/gpu` units per node), largest remainder first, so the
    parts add up to `total`."""
    capacity = {p.name: p.capacity_devices for p in pools}
    whole = sum(capacity.values())
    if not pools or whole == 0:
        return {}
    exact = {n: total * c / whole for n, c in capacity.items()}
    parts = {n: int(v) for n, v in exact.items()}
    for n in sorted(exact, key=lambda n: (-(exact[n] - parts[n]), n))[: total - sum(parts.values())]:
        parts[n] += 1
    return parts


def cluster_queue_spec(tenant: TenantQuota, pools: tuple[GpuPool, ...]) -> dict:
    groups = [
        {
            "coveredResources": ["cpu", "memory"],
            "flavors": [{"name": CPU_FLAVOR, "resources": [
                {"name": "cpu", "nominalQuota": tenant.cpu},
                {"name": "memory", "nominalQuota": tenant.memory},
            ]}],
        }
    ]
    if pools:
        shares = split_gpus(tenant.gpus, pools)
        groups.append(
            {
                "coveredResources": [GPU_RESOURCE],
                "flavors": [
                    {"name": pool.name, "resources": [
                        {"name": GPU_RESOURCE, "nominalQuota": shares[pool.name], "borrowingLimit": tenant.borrow_gpus}
                    ]}
                    for pool in pools
                ],
            }
        )
    return {
        "cohortName": COHORT,
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": tenant.name}},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": groups,
        "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
        "fairSharing": {"weight": 1},
    }


def flavor_spec(pool: GpuPool) -> dict:
    return {
        "nodeLabels": {LABEL_POOL: pool.name},
        # Every taint of the pool, the cloud's own included (AKS spot): else admitted pods stay Pending.
        "tolerations": [{"key": t.key, "operator": "Exists", "effect": t.effect} for t in pool.taints],
    }


class Kueue(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cluster: Cluster,
        tenants: tuple[TenantQuota, ...],
        replicas: int = 1,
        metrics: bool = False,
        multikueue_manager: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`multikueue_manager`: this cluster dispatches to MultiKueue workers (Incremental
        dispatcher); its tenant ClusterQueues then come from the bursting component."""
        super().__init__("ai-platform:addons:Kueue", name, None, opts)
        ns = namespace(f"{name}-namespace", NAMESPACE, "restricted", self)
        placement = system_placement(cluster)
        self.release = release(
            f"{name}-release",
            versions.KUEUE,
            ns.metadata.name,
            {
                "controllerManager": {
                    "replicas": replicas,
                    **placement,
                    "podDisruptionBudget": {"enabled": replicas > 1, "minAvailable": 1},
                },
                "managerConfig": {"controllerManagerConfigYaml": MANAGER_CONFIG + (
                    MULTIKUEUE_MANAGER_CONFIG if multikueue_manager else "")},
                "enablePrometheus": metrics,
            },
            self,
            cluster,
            release_name="kueue",
        )
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[self.release])

        def resource(role: str, kind: str, obj_name: str, spec: dict | None = None, **fields):
            if spec is not None:
                fields["spec"] = spec
            return KubernetesObject(
                f"{name}-{role}", API_VERSION, kind, k8s.meta.v1.ObjectMetaArgs(name=obj_name), fields, after_crds
            )

        self.flavors = [resource("flavor-default", "ResourceFlavor", CPU_FLAVOR, {})]
        self.flavors += [resource(f"flavor-{p.name}", "ResourceFlavor", p.name, flavor_spec(p)) for p in cluster.gpu_pools]
        self.priority_classes = [
            resource(f"priority-{n}", "WorkloadPriorityClass", n, value=v,
                     description=f"ai-platform {n.removeprefix('platform-')} priority")
            for n, v in PRIORITY_CLASSES.items()
        ]
        self.cluster_queues = {
            t.name: resource(f"queue-{t.name}", "ClusterQueue", t.name, cluster_queue_spec(t, cluster.gpu_pools))
            for t in tenants
        }
        self.register_outputs({"clusterQueues": list(self.cluster_queues)})
