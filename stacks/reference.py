"""Generates the README's config reference from the schema itself, so it cannot drift."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from .config import NAMESPACE, StackConfig, _unwrap

_DEFAULT = re.compile(r"\s*@default\s+(.*)$")


def _type_name(annotation) -> str:
    text = repr(annotation).replace("typing.", "")
    text = re.sub(r"<class '([\w.]+\.)?(\w+)'>", r"\2", text)
    text = re.sub(r"Annotated\[(\w+), .*?\]", r"\1", text)
    text = re.sub(r"(\w+\.)+(\w+)", r"\2", text)
    text = text.replace("tuple[", "list[").replace(", ...]", "]")
    text = re.sub(r"Optional\[(.*)\]$", r"\1", text).replace(" | None", "")
    text = re.sub(r"Literal\[(.*?)\]", lambda m: " / ".join(v.strip() for v in m.group(1).split(",")), text)
    return text


def _bounds(field) -> str:
    """` (1 to 100)` from the field's ge/gt/le/lt constraints: the range the config accepts."""
    low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None),
               next((m.gt + 1 for m in field.metadata if isinstance(getattr(m, "gt", None), int)), None))
    high = next((m.le for m in field.metadata if getattr(m, "le", None) is not None),
                next((m.lt - 1 for m in field.metadata if isinstance(getattr(m, "lt", None), int)), None))
    if low is None and high is None:
        return ""
    return f" ({low if low is not None else '...'} to {high if high is not None else '...'})"


def rows(model: type[BaseModel] = StackConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    # A model's own keys first (in declaration order), then the ones it inherits.
    own = [n for n in model.__dict__.get("__annotations__", {}) if n in model.model_fields]
    for name in own + [n for n in model.model_fields if n not in own]:
        field = model.model_fields[name]
        key = f"{prefix}{field.alias or name}"
        doc = (field.description or "").strip()
        default = ""
        m = _DEFAULT.search(doc)
        if m:
            default, doc = m.group(1).strip(), doc[: m.start()].strip()
        elif field.is_required():
            default = "required"
        inner = _unwrap(field.annotation)
        is_list = typing.get_origin(field.annotation) in (tuple, list)
        out.append((key, _type_name(field.annotation) + _bounds(field), default, doc))
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            out += rows(inner, f"{key}[]." if is_list else f"{key}.")
    return out


def markdown() -> str:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, type_, default, doc in rows():
        top, _, rest = key.partition(".")
        full = f"{NAMESPACE}:{top}" + (f".{rest}" if rest else "")
        cells = [f"`{full}`", type_, default, doc]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def _param_summary(name: str, schema: dict) -> str:
    kind = schema.get("type", "")
    if kind == "array":
        item = schema.get("items", {})
        kind = f"list of {'objects' if item.get('type') == 'object' else item.get('type', 'values')}"
    if "format" in schema:
        kind += f" ({schema['format']})"
    default = schema.get("default")
    if isinstance(default, list) and len(default) > 3:
        shown = f"{len(default)} entries"
    else:
        shown = "[]" if default == [] else str(default).replace("'", "")
    return f"`{name}`: {kind}, default {shown}"


def policy_rows() -> list[dict]:
    from policies.rules import ALL_POLICIES

    out = []
    for p in ALL_POLICIES:
        fw = p.framework
        config = dict(p.config_schema.properties or {}) if p.config_schema is not None else {}
        out.append(
            {
                "name": p.name,
                "description": p.description,
                "severity": p.severity.value if p.severity else "",
                "enforcementLevel": p.enforcement_level.value if p.enforcement_level else "advisory",
                "framework": f"{fw.name} {fw.reference}" if fw else "",
                "config": config,
            }
        )
    return out


def policy_markdown() -> str:
    from policies.rules.kubernetes import PLATFORM_EXEMPTIONS

    lines = ["| policy | severity | level | framework | what it checks | config |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in policy_rows():
        config = "; ".join(_param_summary(k, v) for k, v in r["config"].items()) or "-"
        lines.append(
            f"| `{r['name']}` | {r['severity']} | {r['enforcementLevel']} | {r['framework']} | {r['description']} "
            f"| {config} |"
        )
    lines += ["", "Default exemptions (the `exemptions` parameter of the pod policies; namespace + a glob on the "
              "workload's name):", "", "| namespace | component | why | exempt from |", "| --- | --- | --- | --- |"]
    for namespace, component, reason, checks in PLATFORM_EXEMPTIONS:
        lines.append(f"| `{namespace}` | `{component}` | {reason} | {', '.join(checks)} |")
    return "\n".join(lines)


def role_markdown() -> str:
    """What each tenant role may do, per API group and resource (from components/guardrails.py)."""
    from components.guardrails import ROLES

    verbs: dict[tuple[str, str], dict[str, set[str]]] = {}
    for role, rules in ROLES.items():
        for rule in rules:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    verbs.setdefault((group, resource), {}).setdefault(role, set()).update(rule["verbs"])

    def cell(granted: set[str] | None) -> str:
        if not granted:
            return "-"
        if {"create", "update", "delete"} <= granted:
            return "read-write"
        if granted <= {"get", "list", "watch"}:
            return "read"
        return ", ".join(sorted(granted))

    names = list(ROLES)
    lines = ["| API group | resource | " + " | ".join(f"`{n}`" for n in names) + " |",
             "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for (group, resource), by_role in sorted(verbs.items()):
        lines.append(f"| {group or 'core'} | {resource} | " + " | ".join(cell(by_role.get(n)) for n in names) + " |")
    return "\n".join(lines)
