"""A small NetworkPolicy evaluator, as the Kubernetes API documents the semantics, so tests can
ask the question that matters ("may this pod open this port on that pod?") instead of
comparing a policy's fields with the values it was built from.

https://kubernetes.io/docs/concepts/services-networking/network-policies/ : a pod is isolated
for a direction when a policy of its namespace selects it with that policy type; a connection
is allowed when the source may send it (egress) and the destination may receive it (ingress);
rules add up; a peer with only a podSelector means pods of the policy's own namespace; an
empty or missing `ports` means every port, a port's protocol defaults to TCP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stacks.rbac import labels_match


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict = field(default_factory=dict)


def _types(spec: dict) -> list[str]:
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))


class Network:
    def __init__(self, policies: list[dict], namespace_labels: dict[str, dict] | None = None):
        """`policies`: NetworkPolicy objects (metadata and spec)."""
        self.policies = policies
        self.namespace_labels = namespace_labels or {}

    def _ns_labels(self, namespace: str) -> dict:
        # The API server sets this label on every namespace.
        return {**self.namespace_labels.get(namespace, {}), "kubernetes.io/metadata.name": namespace}

    def _selecting(self, pod: Pod, kind: str) -> list[dict]:
        return [p for p in self.policies if p["metadata"].get("namespace", "default") == pod.namespace
                and kind in _types(p["spec"]) and labels_match(p["spec"].get("podSelector") or {}, pod.labels)]

    def _peer(self, peer: dict, policy_ns: str, other: Pod) -> bool:
        if "ipBlock" in peer:
            return False  # pods are addressed by selectors here
        if "namespaceSelector" in peer:
            if not labels_match(peer["namespaceSelector"] or {}, self._ns_labels(other.namespace)):
                return False
        elif other.namespace != policy_ns:
            return False
        return labels_match(peer.get("podSelector") or {}, other.labels)

    @staticmethod
    def _port(ports: list[dict] | None, port: int, protocol: str) -> bool:
        if not ports:
            return True
        for p in ports:
            if p.get("protocol", "TCP") != protocol:
                continue
            if "port" not in p:
                return True
            if isinstance(p["port"], int) and p["port"] <= port <= p.get("endPort", p["port"]):
                return True
        return False

    def _allowed(self, pod: Pod, other: Pod, port: int, protocol: str, kind: str) -> bool:
        policies = self._selecting(pod, kind)
        if not policies:
            return True  # not isolated in this direction
        rules_key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        for p in policies:
            for rule in p["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                if (not peers or any(self._peer(x, p["metadata"]["namespace"], other) for x in peers)) \
                        and self._port(rule.get("ports"), port, protocol):
                    return True
        return False

    def allows(self, source: Pod, destination: Pod, port: int, protocol: str = "TCP") -> bool:
        return (self._allowed(source, destination, port, protocol, "Egress")
                and self._allowed(destination, source, port, protocol, "Ingress"))
