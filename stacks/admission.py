"""ValidatingAdmissionPolicies evaluated offline, as the API server would.

Given the policies and bindings a plan registers, `admit()` answers for one request (who,
what operation, which object in which namespace) whether the API server would refuse it
and why: binding namespace selector, the policy's match constraints, match conditions,
variables and validations, evaluated with cel-python. The Kubernetes CEL libraries our
policies use (`cidr()`, `containsCIDR`, `containsIP`, `ip()`, and the authorizer's
`group().resource().namespace().check().allowed()`) are implemented here after
k8s.io/apiserver/pkg/cel/library (cidr.go, ip.go, authz.go); the authorizer answers from
an `Authorize` callback (RBAC over the plan's objects, see stacks/rbac.py). An expression
that fails to evaluate denies, as `failurePolicy: Fail` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache

import celpy
from celpy import celtypes

from .rbac import labels_match


@dataclass(frozen=True)
class User:
    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """One API request: `resource` may name a subresource (`pods/ephemeralcontainers`)."""

    user: User
    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    namespace: str
    resource: str
    group: str = ""
    version: str = "v1"
    object: dict | None = None
    old_object: dict | None = None

    def as_cel(self) -> dict:
        resource, _, sub = self.resource.partition("/")
        name = (self.object or self.old_object or {}).get("metadata", {}).get("name", "")
        return {
            "operation": self.operation, "namespace": self.namespace, "name": name,
            "resource": {"group": self.group, "version": self.version, "resource": resource},
            "subResource": sub,
            "userInfo": {"username": self.user.username, **({"groups": list(self.user.groups)} if self.user.groups else {})},
        }


@dataclass
class Decision:
    allowed: bool
    denials: list[tuple[str, str]] = field(default_factory=list)
    """(policy name, message) for every validation that failed."""


class _Net:
    """A CEL `net.IPPrefix`/`net.IP` value."""

    def __init__(self, network):
        self.network = network


def _prefix(value) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, _Net):
        return value.network
    return ipaddress.ip_network(str(value), strict=False)


def _contains(outer, inner) -> celtypes.BoolType:
    a, b = _prefix(outer), _prefix(inner)
    # Different address families never contain each other (Go's netip.Prefix.Contains).
    return celtypes.BoolType(a.version == b.version and b.subnet_of(a))


Authorize = Callable[[User, str, str, str, str], bool]
"""(user, verb, group, resource, namespace) -> allowed."""


@dataclass(frozen=True)
class _Check:
    """A partly built `authorizer.group(..).resource(..).namespace(..)` call."""

    authorize: Authorize
    user: User
    group: str = ""
    resource: str = ""
    namespace: str = ""


def _with(field_name: str):
    return lambda check, value: replace(check, **{field_name: str(value)})


FUNCTIONS = {
    "group": _with("group"),
    "resource": _with("resource"),
    "namespace": _with("namespace"),
    "check": lambda c, verb: celtypes.BoolType(c.authorize(c.user, str(verb), c.group, c.resource, c.namespace)),
    "allowed": lambda decision: decision,
    "cidr": lambda s: _Net(ipaddress.ip_network(str(s), strict=True)),
    "ip": lambda s: _Net(ipaddress.ip_network(f"{ipaddress.ip_address(str(s))}")),
    "containsCIDR": _contains,
    "containsIP": _contains,
}
_ENV = celpy.Environment()


@cache
def _program(expression: str):
    return _ENV.program(_ENV.compile(expression), functions=FUNCTIONS)


def evaluate(expression: str, activation: dict):
    """The expression's value, or the exception that made it fail."""
    try:
        value = _program(expression).evaluate(activation)
    except Exception as exc:  # noqa: BLE001 - a CEL runtime error: the API server treats it as a failure
        return exc
    return value


def _rule_matches(rule: dict, request: Request) -> bool:
    def has(values, value):
        return "*" in values or value in values

    resource, _, sub = request.resource.partition("/")
    resources = rule.get("resources") or []
    resource_ok = (request.resource in resources or (not sub and "*" in resources)
                   or (sub and (f"*/{sub}" in resources or f"{resource}/*" in resources or "*/*" in resources)))
    return (has(rule.get("apiGroups") or [], request.group) and has(rule.get("apiVersions") or [], request.version)
            and has(rule.get("operations") or [], request.operation) and bool(resource_ok))


def admit(policies: list[dict], bindings: list[dict], request: Request, namespace_labels: dict[str, str],
          authorize: Authorize) -> Decision:
    """Whether the API server admits `request`, given the ValidatingAdmissionPolicy and
    ValidatingAdmissionPolicyBinding objects (as registered), the labels of the request's
    namespace and what the requester is authorized to do."""
    by_name = {p["metadata"]["name"]: p["spec"] for p in policies}
    decision = Decision(True)
    base = {
        "object": celpy.json_to_cel(request.object),
        "oldObject": celpy.json_to_cel(request.old_object),
        "request": celpy.json_to_cel(request.as_cel()),
        "params": celpy.json_to_cel(None),
        "namespaceObject": celpy.json_to_cel({"metadata": {"name": request.namespace, "labels": namespace_labels}}),
        "authorizer": _Check(authorize, request.user),
    }
    for binding in bindings:
        spec = binding["spec"]
        policy = by_name.get(spec["policyName"])
        if policy is None or "Deny" not in spec.get("validationActions", []):
            continue
        match = spec.get("matchResources") or {}
        if not labels_match(match.get("namespaceSelector") or {}, namespace_labels):
            continue
        if not any(_rule_matches(r, request) for r in policy["matchConstraints"]["resourceRules"]):
            continue
        name = binding["metadata"]["name"]
        conditions = [evaluate(c["expression"], base) for c in policy.get("matchConditions") or []]
        if any(c is False or c == celtypes.BoolType(False) for c in conditions):
            continue
        errors = [c for c in conditions if isinstance(c, Exception)]
        if errors:  # failurePolicy Fail
            decision.allowed = False
            decision.denials.append((name, f"match condition error: {errors[0]}"))
            continue
        variables: dict = {}
        activation = {**base, "variables": variables}
        for var in policy.get("variables") or []:  # in order: a variable may use the ones before it
            variables[var["name"]] = evaluate(var["expression"], {**activation, "variables": _as_map(variables)})
        activation["variables"] = _as_map(variables)
        for validation in policy.get("validations") or []:
            result = evaluate(validation["expression"], activation)
            if result is True or result == celtypes.BoolType(True):
                continue
            decision.allowed = False
            message = validation.get("message") or validation["expression"]
            if isinstance(result, Exception):
                message = f"{message} (evaluation error: {result})"
            decision.denials.append((name, message))
    return decision


def _as_map(variables: dict) -> celtypes.MapType:
    return celtypes.MapType({celtypes.StringType(k): v for k, v in variables.items()})
