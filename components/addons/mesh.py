"""Mesh: Istio (base, CNI, istiod, ingress gateway) with mesh-wide STRICT mTLS."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..clusters.base import Cluster
from . import versions
from .common import namespace, release, system_placement

NAMESPACE = "istio-system"
GATEWAY_NAME = "istio-ingressgateway"
GATEWAY_PRINCIPAL = f"cluster.local/ns/{NAMESPACE}/sa/{GATEWAY_NAME}"
INJECTION_LABEL = "istio-injection"


class Mesh(pulumi.ComponentResource):
    """Istio with its CNI plugin (so injected pods need no NET_ADMIN and stay within Pod
    Security `restricted`), STRICT mTLS for the whole mesh, and an internal ingress gateway.
    With `replicas >= 2` (prod) istiod and the gateway run that many and have PDBs."""

    def __init__(self, name: str, cluster: Cluster, replicas: int = 1, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:addons:Mesh", name, None, opts)
        ns = namespace(f"{name}-namespace", NAMESPACE, "baseline", self)
        placement = system_placement(cluster)
        ha = replicas >= 2
        self.base = release(f"{name}-base", versions.ISTIO_BASE, ns.metadata.name,
                            {"defaultRevision": "default"}, self, cluster, release_name="istio-base")
        # GKE needs the CNI node agent in kube-system (its quota for node-critical pods).
        cni_values = {"global": {"platform": cluster.istio_platform}} if cluster.istio_platform else {}
        self.cni = release(f"{name}-cni", versions.ISTIO_CNI, "kube-system", cni_values, self, cluster,
                           release_name="istio-cni", depends_on=[self.base])
        self.istiod = release(
            f"{name}-istiod",
            versions.ISTIOD,
            ns.metadata.name,
            {
                "cni": {"enabled": True},
                "replicaCount": replicas,
                "autoscaleMin": replicas,
                "pdb": {"minAvailable": 1},
                **placement,
                # OFF: istiod programs no gateway from Kubernetes Ingresses, which tenant admins
                # may create (any host, ExternalName backends) onto the shared ingress gateway.
                "meshConfig": {"accessLogFile": "/dev/stdout", "enablePrometheusMerge": True,
                               "ingressControllerMode": "OFF"},
                # /debug/* on 8080 lists every namespace's services, endpoints and policies; the
                # readiness probe (/ready) is served without it.
                "env": {"ENABLE_DEBUG_ON_HTTP": "false"},
                # Injected sidecars pass Pod Security "restricted" whatever the pod sets itself.
                "global": {"proxy": {"seccompProfile": {"type": "RuntimeDefault"}}},
            },
            self,
            cluster,
            release_name="istiod",
            depends_on=[self.base, self.cni],
        )
        annotations = cluster.internal_lb_annotations
        self.gateway = release(
            f"{name}-gateway",
            versions.ISTIO_GATEWAY,
            ns.metadata.name,
            {
                "replicaCount": replicas,
                "autoscaling": {"enabled": True, "minReplicas": replicas, "maxReplicas": max(5, replicas)},
                "podDisruptionBudget": {"minAvailable": 1} if ha else {},
                # Internal load balancer where the cloud has one; never a public one.
                "service": {"type": "LoadBalancer", "annotations": annotations} if annotations
                else {"type": "ClusterIP"},
                **placement,
            },
            self,
            cluster,
            release_name=GATEWAY_NAME,
            depends_on=[self.istiod],
        )
        self.strict_mtls = k8s.apiextensions.CustomResource(
            f"{name}-strict-mtls",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default", namespace=ns.metadata.name),
            spec={"mtls": {"mode": "STRICT"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.base]),
        )
        self.register_outputs({"gatewayPrincipal": GATEWAY_PRINCIPAL})
