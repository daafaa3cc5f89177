"""A small IAM policy evaluator (identity and trust policies), as AWS documents evaluation,
so tests ask "may this principal do this?" rather than compare a policy with its source.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html :
an explicit Deny wins, else any matching Allow, else denied. Actions and resources match with
`*`/`?` wildcards (actions case-insensitively); StringEquals/StringLike need every key to
match one of its values, and a key missing from the request context does not match.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _conditions(condition: dict | None, context: dict[str, str]) -> bool:
    for operator, pairs in (condition or {}).items():
        for key, values in pairs.items():
            actual = context.get(key)
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in _list(values):
                return False
            if operator == "StringLike" and not any(fnmatchcase(actual, v) for v in _list(values)):
                return False
            if operator not in ("StringEquals", "StringLike"):
                raise NotImplementedError(operator)
    return True


def _statement_matches(s: dict, action: str, resource: str | None, principal: str | None,
                       context: dict[str, str]) -> bool:
    if not any(fnmatchcase(action.lower(), a.lower()) for a in _list(s.get("Action", []))):
        return False
    if resource is not None and not any(fnmatchcase(resource, r) for r in _list(s.get("Resource", []))):
        return False
    if principal is not None and principal not in [p for v in s.get("Principal", {}).values() for p in _list(v)]:
        return False
    return _conditions(s.get("Condition"), context)


def allows(policy: str | dict, action: str, resource: str | None = None, principal: str | None = None,
           context: dict[str, str] | None = None) -> bool:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    matching = [s for s in _list(doc["Statement"]) if _statement_matches(s, action, resource, principal, context or {})]
    return bool(matching) and all(s["Effect"] == "Allow" for s in matching)


def problems(policy: str | dict, trust: bool = False) -> list[str]:
    """What IAM would refuse in a policy document (the policy grammar,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html): the
    current Version (policy variables need it), statements with an Effect, an Action, and a
    Resource (identity policies) or a Principal (trust policies)."""
    doc = json.loads(policy) if isinstance(policy, str) else policy
    out = []
    if doc.get("Version") != "2012-10-17":
        out.append(f"Version {doc.get('Version')!r}")
    statements = _list(doc.get("Statement") or [])
    if not statements:
        out.append("no Statement")
    for i, s in enumerate(statements):
        if s.get("Effect") not in ("Allow", "Deny"):
            out.append(f"Statement[{i}]: Effect {s.get('Effect')!r}")
        if ("Action" in s) == ("NotAction" in s) or not _list(s.get("Action", s.get("NotAction"))):
            out.append(f"Statement[{i}]: needs exactly one of Action/NotAction")
        needed = "Principal" if trust else "Resource"
        if needed not in s and f"Not{needed}" not in s:
            out.append(f"Statement[{i}]: no {needed}")
        if trust and "Resource" in s:
            out.append(f"Statement[{i}]: a trust policy names no Resource")
    return out
