"""CertManager: cert-manager with its CRDs (KServe's webhooks need it)."""

from __future__ import annotations

import pulumi

from ..clusters.base import Cluster
from . import versions
from .common import namespace, release, system_placement

NAMESPACE = "cert-manager"


class CertManager(pulumi.ComponentResource):
    def __init__(self, name: str, cluster: Cluster, replicas: int = 1, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:addons:CertManager", name, None, opts)
        ns = namespace(f"{name}-namespace", NAMESPACE, "restricted", self)
        placement = system_placement(cluster)
        values = {
            "crds": {"enabled": True, "keep": True},
            "replicaCount": replicas,
            "podDisruptionBudget": {"enabled": replicas > 1},
            **placement,
            "webhook": {"replicaCount": replicas, **placement},
            "cainjector": {"replicaCount": replicas, **placement},
            "startupapicheck": placement,
            "prometheus": {"enabled": True},
        }
        self.release = release(f"{name}-release", versions.CERT_MANAGER, ns.metadata.name, values, self, cluster)
        self.register_outputs({"status": self.release.status})
