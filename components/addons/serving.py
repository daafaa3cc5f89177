"""Serving: KServe, on Knative Serving (scale to zero, canaries) or in standard mode."""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from ..clusters.base import Cluster
from . import versions
from .common import namespace, release, system_affinity, system_placement

KSERVE_NAMESPACE = "kserve"
KNATIVE_OPERATOR_NAMESPACE = "knative-operator"
KNATIVE_SERVING_NAMESPACE = "knative-serving"
ServingMode = Literal["knative", "standard"]


def example_inference_service(tenant: str) -> dict:
    """A small scikit-learn InferenceService that fits Pod Security `restricted`."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "example-sklearn", "namespace": tenant, "labels": {"ai-platform.io/example": "true"}},
        "spec": {
            "predictor": {
                "minReplicas": 0,
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                  "limits": {"cpu": "1", "memory": "1Gi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                },
            }
        },
    }


# Knative Serving's deployments (with the Istio ingress); the operator applies per-name overrides.
KNATIVE_WORKLOADS = ("activator", "autoscaler", "controller", "webhook", "net-istio-controller", "net-istio-webhook")
# Under mesh-wide STRICT mTLS the activator (in the request path when scaling from zero) and the
# autoscaler (scrapes queue-proxy) must carry sidecars, or tenant pods refuse them; Knative's
# "Mutual TLS in Knative" (serving/istio-authorization). Webhooks stay without one: the API server
# calls them without mesh mTLS.
MESH_WORKLOADS = ("activator", "autoscaler")


def knative_workloads(cluster: Cluster, mesh: bool) -> list[dict]:
    """KnativeServing `spec.workloads`: every deployment on the system pool, sidecars where needed."""
    placement = system_placement(cluster)
    out = []
    for name in KNATIVE_WORKLOADS:
        # The operator only overrides non-empty fields, so empty ones are left out.
        workload: dict = {"name": name, **{k: v for k, v in placement.items() if v}}
        if mesh and name in MESH_WORKLOADS:
            workload["labels"] = {"sidecar.istio.io/inject": "true"}
        out.append(workload)
    return out


# The chart sets no pod securityContext unless given one, and no seccompProfile at all:
# Pod Security "restricted" of the namespace would refuse both pods.
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def knative_pod(cluster: Cluster) -> dict:
    """Values of one Knative operator deployment: restricted, on the system pool (the chart
    has no nodeSelector value, so a required node affinity)."""
    placement = system_placement(cluster)
    affinity = system_affinity(cluster)
    return {"securityContext": RESTRICTED_POD, "tolerations": placement["tolerations"],
            **({"affinity": affinity} if affinity else {})}


class Serving(pulumi.ComponentResource):
    """KServe's CRDs and controller; in `knative` mode also the Knative operator and a
    KnativeServing wired to Istio. Optionally an example InferenceService per tenant."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        mode: ServingMode,
        cert_manager: pulumi.Resource,
        mesh: list[pulumi.Resource],
        ingress: bool = True,
        example_tenants: list[pulumi.Resource] | None = None,
        example_namespaces: tuple[str, ...] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`cert_manager`: the cert-manager release (KServe's webhooks need it).
        `mesh`: the Istio releases Knative's ingress needs (empty in standard mode).
        `ingress`: Istio is there to route to InferenceServices; without it KServe creates no
        Ingress (one of class `istio` would be served by nobody): services are in-cluster only."""
        if mode == "knative" and not mesh:
            raise ValueError("knative serving needs the Istio mesh")
        super().__init__("ai-platform:addons:Serving", name, None, opts)
        placement = system_placement(cluster)
        depends = [cert_manager]
        if mode == "knative":
            op_ns = namespace(f"{name}-knative-operator-namespace", KNATIVE_OPERATOR_NAMESPACE, "restricted", self)
            self.knative_operator = release(
                f"{name}-knative-operator", versions.KNATIVE_OPERATOR, op_ns.metadata.name,
                {"knative_operator": {k: knative_pod(cluster) for k in ("knative_operator", "operator_webhook")}},
                self, cluster,
            )
            serving_ns = namespace(f"{name}-knative-serving-namespace", KNATIVE_SERVING_NAMESPACE, "restricted", self)
            self.knative_serving = k8s.apiextensions.CustomResource(
                f"{name}-knative-serving",
                api_version="operator.knative.dev/v1beta1",
                kind="KnativeServing",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="knative-serving", namespace=serving_ns.metadata.name,
                    # The operator creates Knative's CRDs while it reconciles this: KServe's
                    # controller must not start before they exist, so `pulumi up` waits for Ready.
                    annotations={"pulumi.com/waitFor": "condition=Ready"},
                ),
                spec={
                    "ingress": {"istio": {"enabled": True}},
                    "workloads": knative_workloads(cluster, mesh=True),
                    "config": {
                        "network": {"ingress-class": "istio.ingress.networking.knative.dev"},
                        "autoscaler": {"enable-scale-to-zero": "true"},
                        "features": {"kubernetes.podspec-securitycontext": "enabled"},
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.knative_operator, *mesh]),
            )
            depends.append(self.knative_serving)
        ns = namespace(f"{name}-namespace", KSERVE_NAMESPACE, "restricted", self)
        self.crds = release(f"{name}-crds", versions.KSERVE_CRD, ns.metadata.name, {}, self, cluster,
                            release_name="kserve-crd")
        self.release = release(
            f"{name}-release",
            versions.KSERVE,
            ns.metadata.name,
            {
                "kserve": {
                    "controller": {
                        "deploymentMode": "Knative" if mode == "knative" else "Standard",
                        **placement,
                        "gateway": {"ingressGateway": {"className": "istio"}} if ingress
                        else {"disableIngressCreation": True, "disableIstioVirtualHost": True},
                    }
                }
            },
            self,
            cluster,
            release_name="kserve",
            depends_on=[self.crds, *depends],
        )
        self.examples = []
        for tenant in example_namespaces:
            doc = example_inference_service(tenant)
            self.examples.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-example-{tenant}",
                    api_version=doc["apiVersion"],
                    kind=doc["kind"],
                    metadata=k8s.meta.v1.ObjectMetaArgs(**doc["metadata"]),
                    spec=doc["spec"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *(example_tenants or [])]),
                )
            )
        self.register_outputs({"mode": mode})
