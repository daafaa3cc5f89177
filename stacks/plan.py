"""`python -m stacks plan`: the offline engine.

Runs the real program (`__main__.py`, the same file `pulumi up` runs) under Pulumi's
mock runtime with config read from a stack file exactly as the Pulumi CLI would pass
it, then runs every CrossGuard policy of `policies/` on what was registered and
validates every Kubernetes object and Helm values tree. A check, not a deployment.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.addons import versions
from policies.rules import ALL_POLICIES

from . import analyzer, validate
from . import config as stack_config
from . import render as rendering
from .config import StackConfigError
from .engine import Registration, Run, is_secret, plain, run_program
from .platform import SOURCE_ENV

REPO = validate.REPO
PROGRAM = REPO / "__main__.py"
PROJECT = "ai-platform"
SECRET_PLACEHOLDER = stack_config.SECRET_PLACEHOLDER
NOTE = "Offline check under Pulumi's mock runtime with simulated cloud responses; nothing was deployed."

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class PlanInputError(Exception):
    """The stack file itself is unusable (missing, not YAML, wrong shape)."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


Violation = analyzer.Verdict


@dataclass
class PlanResult:
    stack: str
    source: str
    run: Run | None = None
    config_errors: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    findings: list[validate.Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    policy_config: dict = field(default_factory=dict)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def exit_code(self) -> int:
        if self.config_errors:
            return EXIT_CONFIG
        if self.mandatory or self.findings:
            return EXIT_FAILED
        return EXIT_OK


# -- reading a stack file the way the Pulumi CLI does ------------------------------------


def stack_file(stack: str) -> Path:
    return REPO / f"Pulumi.{stack}.yaml"


def stack_name_for(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name[len("Pulumi."):].rsplit(".", 1)[0]
    return path.stem


def _secure_placeholders(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        items = {k: _secure_placeholders(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        items = [_secure_placeholders(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def read_stack_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys the CLI would hand the program."""
    label = path.name
    if not path.is_file():
        raise PlanInputError([f"{label}: no such stack file ({path})"])
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise PlanInputError([f"{label}: not valid YAML at {where}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise PlanInputError([f"{label}: not valid YAML: {exc}"]) from None
    doc = doc or {}
    if not isinstance(doc, dict):
        raise PlanInputError([f"{label}: must be a mapping with a `config:` key"])
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise PlanInputError([f"{label}: config: must be a mapping of `namespace:key: value`"])
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        key = str(key)
        full = key if ":" in key else f"{PROJECT}:{key}"
        value, secret = _secure_placeholders(value)
        if secret:
            secret_keys.append(full)
        if isinstance(value, (dict, list)):
            config[full] = json.dumps(value)
        elif isinstance(value, bool):
            config[full] = "true" if value else "false"
        else:
            config[full] = "" if value is None else str(value)
    return config, secret_keys


# -- policies ----------------------------------------------------------------------------


POLICY_DIR = REPO / "policies"


def policy_config_file(stack: str) -> Path:
    """`policies/policy-config.<stack>.json` when it exists, else `policies/policy-config.json`."""
    specific = POLICY_DIR / f"policy-config.{stack}.json"
    return specific if specific.is_file() else POLICY_DIR / "policy-config.json"


def _reconcile(pack, doc: dict, label: str) -> dict[str, dict]:
    config, problems = analyzer.reconcile(analyzer.policy_infos(pack.info()), doc, label)
    if problems:
        raise PlanInputError(problems)
    return config


def read_policy_config(path: Path | None) -> dict:
    """The `--policy-pack-config` document: {policy: level | {enforcementLevel?, params...}, all?: level},
    checked as the CLI checks it (known policies, levels, parameters against each policy's schema)."""
    if path is None or not Path(path).is_file():
        return {}
    label = Path(path).name
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise PlanInputError([f"{label}: not valid JSON at line {exc.lineno}: {exc.msg}"]) from None
    if not isinstance(doc, dict):
        raise PlanInputError([f"{label}: must be a JSON object of policy name -> level or settings"])
    with analyzer.InProcessPack() as pack:
        _reconcile(pack, doc, label)
    return doc


def run_policies(run: Run, policies=None, config: dict | None = None, served: bool = False) -> list[Violation]:
    """The pack's verdicts on a run, through pulumi_policy's Analyzer (in-process, or the served
    pack over gRPC): resource policies see each resource's inputs, stack policies every
    resource's outputs. `config` is a policy-pack config document. A crash of the pack, which
    fails a real `pulumi preview`, is a mandatory violation here."""
    try:
        with analyzer.ServedPack() if served else analyzer.InProcessPack(policies) as pack:
            settings = _reconcile(pack, config or {}, "policy config")
            return analyzer.evaluate(pack, run.registrations, settings, run.stack, run.project)
    except analyzer.PackError as exc:
        return [Violation("policy-pack", "", "mandatory", str(exc))]


# -- schema validation -------------------------------------------------------------------


def _kubernetes_version(run: Run, r: Registration) -> str | None:
    provider = run.get(r.provider_urn)
    if provider is None:
        return None
    return (run.component_outputs.get(provider.parent) or {}).get("kubernetesVersion")


def run_validation(run: Run, result: PlanResult) -> None:
    upstream = validate.upstream_dir()
    objects = customs = releases = 0
    skipped_customs = 0
    seen: dict[tuple, str] = {}
    for r in run.resources:
        if not r.custom:
            continue
        inputs = plain(r.inputs)
        if validate.is_kubernetes_object(r.type):
            # Two objects with one identity on one cluster: the second `pulumi up` step fails
            # (or, worse, both fight over it).
            meta = inputs.get("metadata") or {}
            group = str(inputs.get("apiVersion", "")).rpartition("/")[0]
            cluster = run.cluster_of(r)
            key = (cluster.urn if cluster else "", group, inputs.get("kind"), meta.get("namespace") or "", meta.get("name"))
            if key in seen:
                result.findings.append(validate.Finding(
                    r.urn, "kubernetes", f"{inputs.get('kind')} {'/'.join(filter(None, key[3:]))} is also "
                    f"declared by {seen[key]}"))
            seen.setdefault(key, r.urn)
            version = _kubernetes_version(run, r)
            if version is None:
                result.findings.append(validate.Finding(r.urn, "kubernetes", "cannot tell which cluster/version it targets"))
                continue
            problem = validate.kubernetes_object(inputs, version)
            if problem == validate.NO_SCHEMA:
                if upstream is None:
                    skipped_customs += 1
                    continue
                customs += 1
                problem = validate.custom_resource(inputs, upstream)
                kind = "custom-resource"
            else:
                objects += 1
                kind = "kubernetes"
            if problem:
                result.findings.append(validate.Finding(r.urn, kind, problem))
        elif r.type == validate.HELM_RELEASE:
            chart = versions.chart_for(str(inputs.get("chart")), str(inputs.get("version")))
            if chart is None:
                result.findings.append(validate.Finding(
                    r.urn, "helm-values", f"{inputs.get('chart')} {inputs.get('version')} is not a pinned chart"))
                continue
            if upstream is None or chart.values_file is None:
                continue
            defaults = validate.chart_defaults(upstream, chart.values_file, chart.values_root)
            if defaults is None:
                result.findings.append(validate.Finding(r.urn, "helm-values", f"no upstream {chart.values_file}"))
                continue
            releases += 1
            freeform = validate.FREEFORM_VALUES.get(chart.name, set())
            referenced = validate.template_value_paths(upstream, chart.values_file)
            for key in validate.unknown_value_keys(inputs.get("values") or {}, defaults, freeform, referenced=referenced):
                result.findings.append(validate.Finding(
                    r.urn, "helm-values", f"values key {key!r} does not exist in {chart.upstream}"))
    result.checked = {"kubernetesObjects": objects, "customResources": customs, "helmReleases": releases,
                      "customResourcesSkipped": skipped_customs}
    if upstream is None:
        result.skipped.append(
            f"Helm values and {skipped_customs} custom resources not checked: upstream data not found "
            f"(set ${validate.UPSTREAM_ENV} or run `make upstream`)"
        )


# -- the plan ----------------------------------------------------------------------------


def plan(stack: str | None = None, config_file: Path | None = None, policy_config: Path | None = None,
         served_pack: bool = False) -> PlanResult:
    path = Path(config_file) if config_file else stack_file(stack or "dev")
    stack = stack or stack_name_for(path)
    result = PlanResult(stack=stack, source=path.name)
    try:
        config, secret_keys = read_stack_file(path)
        result.policy_config = read_policy_config(Path(policy_config) if policy_config else policy_config_file(stack))
    except PlanInputError as exc:
        result.config_errors = exc.lines
        return result
    previous, cwd = os.environ.get(SOURCE_ENV), os.getcwd()
    os.environ[SOURCE_ENV] = path.name
    os.chdir(REPO)  # Pulumi runs the program from the project directory
    try:
        run = run_program(str(PROGRAM), stack=stack, project=PROJECT, config=config, secret_keys=secret_keys)
    finally:
        os.chdir(cwd)
        if previous is None:
            os.environ.pop(SOURCE_ENV, None)
        else:
            os.environ[SOURCE_ENV] = previous
    result.run = run
    if isinstance(run.error, StackConfigError):
        result.config_errors = run.error.lines
        return result
    if run.error is not None:
        raise run.error
    result.violations = run_policies(run, config=result.policy_config, served=served_pack)
    run_validation(run, result)
    run_rendering(run, result)
    return result


def run_rendering(run: Run, result: PlanResult) -> None:
    """Render every Helm release with its pinned chart; admission and scheduling of its pods."""
    rendered = rendering.check(run, validate.upstream_dir())
    result.findings += rendered.findings
    result.checked["helmReleasesRendered"] = rendered.releases
    result.checked["podsChecked"] = rendered.pods
    result.checked["tenantSubjectsChecked"] = rendered.tenant_subjects
    result.skipped += rendered.skipped


# -- output ------------------------------------------------------------------------------


def _redact_outputs(outputs: dict) -> dict:
    return {k: ({"secret": True} if is_secret(v) else plain(v)) for k, v in outputs.items()}


def report(result: PlanResult) -> dict:
    run = result.run
    resources = sorted(run.resources if run else [], key=lambda r: r.urn)
    return {
        "stack": result.stack,
        "source": result.source,
        "note": NOTE,
        "configErrors": result.config_errors,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "provider": r.provider_urn,
                "inputs": plain(r.inputs, secret=SECRET_PLACEHOLDER),
                "dependencies": sorted(r.dependencies),
                "protect": r.protect,
                "ignoreChanges": list(r.ignore_changes),
            }
            for r in resources
        ],
        "outputs": _redact_outputs(run.outputs) if run and not result.config_errors else {},
        "violations": [vars(v) for v in result.violations],
        "validation": [vars(f) for f in result.findings],
        "summary": {
            "resources": len(resources),
            "protected": sum(1 for r in resources if r.protect),
            "policies": len(ALL_POLICIES),
            "mandatoryViolations": len(result.mandatory),
            "advisoryViolations": len(result.violations) - len(result.mandatory),
            "kubernetesObjectsChecked": result.checked.get("kubernetesObjects", 0),
            "customResourcesChecked": result.checked.get("customResources", 0),
            "helmReleasesChecked": result.checked.get("helmReleases", 0),
            "helmReleasesRendered": result.checked.get("helmReleasesRendered", 0),
            "podsChecked": result.checked.get("podsChecked", 0),
            "tenantSubjectsChecked": result.checked.get("tenantSubjectsChecked", 0),
            "invalidObjects": len(result.findings),
            "skipped": result.skipped,
            "exitCode": result.exit_code,
        },
    }


def render_tree(run: Run) -> list[str]:
    children: dict[str, list[Registration]] = {}
    for r in run.registrations:
        children.setdefault(r.parent, []).append(r)
    roots = children.get("", [])
    width = max((len(r.type) for r in run.registrations), default=10) + 8
    lines = [f"     {'Type':<{width}}Name"]

    def walk(r: Registration, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else prefix + ("└─ " if last else "├─ ")
        label = f"{branch}{r.type}"
        flags = " [protected]" if r.protect else ""
        lines.append(f" +   {label:<{width}}{r.name}{flags}")
        kids = sorted(children.get(r.urn, []), key=lambda c: (c.custom, c.name))
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("   " if last or depth == 0 else "│  ") if depth else "", i == len(kids) - 1, depth + 1)

    for root in roots:
        walk(root, "", True, 0)
    return lines


def _taints(items) -> str:
    return ", ".join(items) or "none"


def _cluster_line(r: Registration, p: dict) -> str | None:
    """One line on a managed control plane, from what was registered."""
    if r.type == "aws:eks/cluster:Cluster":
        vpc = p.get("vpcConfig", {})
        access = f"public {vpc.get('publicAccessCidrs')}" if vpc.get("endpointPublicAccess") else "private"
        return (f"EKS {p.get('name')}: endpoint {access}; secrets encrypted with KMS; logs "
                f"{','.join(p.get('enabledClusterLogTypes', []))}; auth {p.get('accessConfig', {}).get('authenticationMode')}")
    if r.type == "gcp:container/cluster:Cluster":
        private = p.get("privateClusterConfig", {})
        nets = [c.get("cidrBlock") for c in p.get("masterAuthorizedNetworksConfig", {}).get("cidrBlocks", [])]
        access = "private" if private.get("enablePrivateEndpoint") else f"public {nets}"
        return (f"GKE {p.get('name')}: endpoint {access}; private nodes {private.get('enablePrivateNodes')}; "
                f"database encryption {p.get('databaseEncryption', {}).get('state')}; workload identity "
                f"{p.get('workloadIdentityConfig', {}).get('workloadPool')}; {p.get('datapathProvider')}; "
                f"channel {p.get('releaseChannel', {}).get('channel')}")
    if r.type == "azure-native:containerservice:ManagedCluster":
        api = p.get("apiServerAccessProfile", {})
        access = "private" if api.get("enablePrivateCluster") else f"public {api.get('authorizedIPRanges')}"
        system = (p.get("agentPoolProfiles") or [{}])[0]
        return (f"AKS {p.get('resourceName')}: endpoint {access}; Entra ID + Azure RBAC "
                f"{p.get('aadProfile', {}).get('enableAzureRBAC')}; local accounts disabled {p.get('disableLocalAccounts')}; "
                f"network policy {p.get('networkProfile', {}).get('networkPolicy')}; system pool {system.get('vmSize')} "
                f"min {system.get('minCount')} max {system.get('maxCount')} taints {_taints(system.get('nodeTaints', []))}")
    return None


def _pool_line(r: Registration, p: dict) -> str | None:
    """One line per node pool, whatever the cloud calls it."""
    if r.type == "aws:eks/nodeGroup:NodeGroup":
        s = p.get("scalingConfig", {})
        taints = [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in p.get("taints", [])]
        return (f"node group {r.name}: {','.join(p.get('instanceTypes', []))} {p.get('capacityType')} "
                f"{p.get('amiType')} min {s.get('minSize')} max {s.get('maxSize')} taints {_taints(taints)}")
    if r.type == "gcp:container/nodePool:NodePool":
        n, a = p.get("nodeConfig", {}), p.get("autoscaling", {})
        taints = [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in n.get("taints", [])]
        gpus = "".join(f" {g.get('count')}x {g.get('type')}" for g in n.get("guestAccelerators", []))
        return (f"node pool {r.name}: {n.get('machineType')}{gpus} {'SPOT' if n.get('spot') else 'ON_DEMAND'} "
                f"min {a.get('totalMinNodeCount')} max {a.get('totalMaxNodeCount')} taints {_taints(taints)}")
    if r.type == "azure-native:containerservice:AgentPool":
        return (f"agent pool {r.name}: {p.get('vmSize')} {p.get('scaleSetPriority')} min {p.get('minCount')} "
                f"max {p.get('maxCount')} taints {_taints(p.get('nodeTaints', []))}")
    return None


def _highlights(run: Run) -> list[str]:
    """What a platform engineer looks for first: the clusters, their GPU pools and taints,
    the Helm releases and each tenant's namespace kit. Sorted, so two runs print the same."""
    out = []
    comps = sorted((r for r in run.registrations if r.type.startswith("ai-platform:clusters:")), key=lambda r: r.name)
    for comp in comps:
        outputs = run.component_outputs.get(comp.urn, {})
        out.append(f"cluster {comp.name} ({outputs.get('cloud', '?')}, Kubernetes {outputs.get('kubernetesVersion', '?')})")
        kids = sorted((r for r in run.resources if r.parent == comp.urn), key=lambda r: r.name)
        for r in kids:
            line = _cluster_line(r, plain(r.inputs))
            out += [f"  {line}"] if line else []
        for r in kids:
            line = _pool_line(r, plain(r.inputs))
            out += [f"  {line}"] if line else []
    releases = []
    for rel in run.by_type(validate.HELM_RELEASE):
        p = plain(rel.inputs)
        tag = (p.get("values") or {}).get("image", {}).get("tag")
        owner = run.cluster_of(rel)
        cluster = owner.name if owner is not None else "?"
        releases.append((cluster, str(p.get("namespace")), str(p.get("name")),
                         f"helm {p.get('name')} {p.get('chart')} {p.get('version')} in {p.get('namespace')} on "
                         f"{cluster}" + (f" (image {tag})" if tag else "")))
    out += [line for *_, line in sorted(releases)]
    tenants = []
    for tenant in (r for r in run.registrations if r.type == "ai-platform:tenancy:Tenant"):
        kids = [r for r in run.resources if r.parent == tenant.urn]
        quota = next((q for k in kids if k.type.endswith(":ResourceQuota")
                      for q in [plain(k.inputs)] if "requests.cpu" in q.get("spec", {}).get("hard", {})), {})
        hard = quota.get("spec", {}).get("hard", {})
        kinds: dict[str, int] = {}
        for k in kids:
            kinds[k.type.rsplit(":", 1)[-1]] = kinds.get(k.type.rsplit(":", 1)[-1], 0) + 1
        tenants.append(
            f"tenant {tenant.name}: gpu quota {hard.get('requests.nvidia.com/gpu')}, cpu {hard.get('requests.cpu')}, "
            f"memory {hard.get('requests.memory')}; " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        )
    return out + sorted(tenants)


def render(result: PlanResult) -> str:
    lines = [f"Planning stack {result.stack!r} from {result.source} (offline)"]
    if result.config_errors:
        lines += result.config_errors
        lines.append(f"error: invalid stack config ({len(result.config_errors)} problem(s)); nothing was planned.")
        return "\n".join(lines)
    run = result.run
    assert run is not None
    lines += ["", *render_tree(run), "", "Highlights:", *("  " + h for h in _highlights(run)), ""]
    if result.violations:
        lines.append("Policy violations:")
        for v in sorted(result.violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn)):
            lines.append(f"  [{v.level}] {v.policy}: {v.message}\n      {v.urn}")
    if result.findings:
        lines.append("Invalid objects:")
        for f in result.findings:
            lines.append(f"  [{f.kind}] {f.urn}\n      {f.reason}")
    rep = report(result)["summary"]
    secret = [k for k, v in run.outputs.items() if is_secret(v)]
    lines += [
        f"Resources: {rep['resources']} to create ({rep['protected']} protected)",
        f"Policies:  {rep['policies']} evaluated, {rep['mandatoryViolations']} mandatory and "
        f"{rep['advisoryViolations']} advisory violations",
        f"Schemas:   {rep['kubernetesObjectsChecked']} Kubernetes objects and {rep['customResourcesChecked']} "
        f"custom resources (strict), {rep['helmReleasesChecked']} Helm values trees checked; "
        f"{rep['invalidObjects']} invalid",
        f"Rendered:  {rep['helmReleasesRendered']} Helm releases with their pinned charts; {rep['podsChecked']} pod "
        f"templates checked for Pod Security admission and a node pool to run on; "
        f"{rep['tenantSubjectsChecked']} tenant subjects' effective RBAC checked against the deny-list",
        *[f"Skipped:   {s}" for s in result.skipped],
        "Outputs:   " + ", ".join(f"{k} [secret]" if k in secret else k for k in sorted(run.outputs)),
        NOTE,
        "Result: " + ("PASS" if result.exit_code == EXIT_OK else "FAIL"),
    ]
    return "\n".join(lines)


def main(
    stack: str | None, config_file: str | None, json_file: str | None, quiet: bool = False,
    policy_config: str | None = None, served_pack: bool = False,
) -> int:
    try:
        result = plan(stack, Path(config_file) if config_file else None, Path(policy_config) if policy_config else None,
                      served_pack)
    except Exception:  # noqa: BLE001 - a program bug, not a user mistake: show it whole
        traceback.print_exc()
        return EXIT_FAILED
    text = render(result)
    if quiet and result.exit_code == EXIT_OK:
        text = "\n".join(text.splitlines()[-8:])
    print(text)
    if json_file:
        Path(json_file).write_text(json.dumps(report(result), indent=2, sort_keys=False) + "\n")
    return result.exit_code


__all__ = ["main", "plan", "report", "read_stack_file", "run_policies", "run_validation"]
