"""The policy pack: every policy has allowed and disallowed samples (gatekeeper-library
style), run through the pack's own gRPC server exactly as `pulumi preview` runs it
(`python -m stacks policies test`), and the offline plan's in-process path gives the same
verdicts as the served pack on every sample and on the dev and prod plans."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from components.tenancy import RESERVED_NAMESPACES
from policies.rules import ALL_POLICIES
from policies.rules.kubernetes import PLATFORM_EXEMPTIONS, PLATFORM_NAMESPACES
from stacks import analyzer, policy_test
from stacks import plan as plan_mod

from .conftest import REPO

SAMPLES = Path(__file__).resolve().parent / "policy_samples"
BY_NAME = {p.name: p for p in ALL_POLICIES}
LOADED = policy_test.load(SAMPLES)


def _id(s: policy_test.Sample) -> str:
    return f"{s.policy}-{s.verdict}-{s.description}"


@pytest.fixture(scope="module")
def served():
    with analyzer.ServedPack() as pack:
        yield pack


@pytest.fixture(scope="module")
def outcomes(served) -> dict[str, policy_test.Outcome]:
    return {_id(o.sample): o for o in policy_test.run(LOADED, served)}


def test_every_policy_has_allowed_and_disallowed_samples():
    assert not policy_test.missing(LOADED, BY_NAME), "policies without samples"
    unknown = {s.policy for s in LOADED} - set(BY_NAME)
    assert not unknown, f"samples for policies that do not exist: {unknown}"


@pytest.mark.parametrize("sample_id", [_id(s) for s in LOADED])
def test_sample_through_the_served_pack(outcomes, sample_id):
    outcome = outcomes[sample_id]
    assert outcome.passed, outcome.detail or "no verdict of the policy"


@pytest.fixture(scope="module")
def in_process_outcomes() -> dict[str, policy_test.Outcome]:
    with analyzer.InProcessPack() as pack:
        return {_id(o.sample): o for o in policy_test.run(LOADED, pack)}


@pytest.mark.parametrize("sample_id", [_id(s) for s in LOADED])
def test_sample_through_the_offline_plans_in_process_pack(in_process_outcomes, sample_id):
    # The path `python -m stacks plan` takes: every sample gets its verdict there too.
    outcome = in_process_outcomes[sample_id]
    assert outcome.passed, outcome.detail or "no verdict of the policy"


def _all_verdicts(pack, sample) -> list[analyzer.Verdict]:
    infos = analyzer.policy_infos(pack.info())
    config, problems = analyzer.reconcile(infos, {sample.policy: sample.config} if sample.config else {}, "sample")
    assert not problems
    return analyzer.evaluate(pack, policy_test.registrations(sample), config, sample.stack, policy_test.PROJECT)


def test_served_and_in_process_verdicts_are_identical_on_every_sample(served):
    with analyzer.InProcessPack() as local:
        for sample in LOADED:
            assert _all_verdicts(local, sample) == _all_verdicts(served, sample), _id(sample)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_served_and_in_process_verdicts_are_identical_on_the_plans(stack, dev_plan, prod_plan):
    result = {"dev": dev_plan, "prod": prod_plan}[stack]
    config = plan_mod.read_policy_config(plan_mod.policy_config_file(stack))
    offline = plan_mod.run_policies(result.run, config=config)
    assert offline == plan_mod.run_policies(result.run, config=config, served=True)
    assert offline == result.violations
    # ...and they are not identical by being empty: a change the pack refuses shows on both paths.
    broken = [r for r in result.run.registrations if r.type == "kubernetes:core/v1:ResourceQuota"]
    assert broken
    saved = [(r.inputs, r.outputs) for r in broken]
    try:
        for r in broken:
            r.inputs = {**r.inputs, "spec": {"hard": {"pods": "10"}}}
            r.outputs = r.inputs
        offline = plan_mod.run_policies(result.run, config=config)
        assert any(v.policy == "kubernetes-namespace-gpu-quota" for v in offline)
        assert offline == plan_mod.run_policies(result.run, config=config, served=True)
    finally:
        for r, (inputs, outputs) in zip(broken, saved, strict=True):
            r.inputs, r.outputs = inputs, outputs


def test_policies_carry_the_metadata_the_pack_promises():
    for p in ALL_POLICIES:
        provider = p.name.split("-")[0]
        assert provider in {"aws", "gcp", "azure", "kubernetes", "stack"}, p.name
        assert p.name == p.name.lower() and " " not in p.name
        assert p.description and p.severity and p.enforcement_level and p.remediation_steps
        assert p.framework is not None and p.framework.reference


def test_pack_imports_standalone_without_the_project():
    # `pulumi preview --policy-pack policies` runs the pack from its own folder.
    code = "import sys; sys.path.insert(0, '.'); import rules; print(len(rules.ALL_POLICIES))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO / "policies", capture_output=True, text=True,
                          env={"PATH": "", "PYTHONPATH": ""}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(ALL_POLICIES)
    main = (REPO / "policies" / "__main__.py").read_text()
    assert "PolicyPack(" in main and "def " not in main


# -- configuration ----------------------------------------------------------------------------

SCHEMAS = {p.name: (p.config_schema.properties or {}) for p in ALL_POLICIES if p.config_schema is not None}


@pytest.mark.parametrize(("policy", "params", "message"), [
    ("stack-endpoint-allowed-networks", {"allowedCidrs": ["10.0.0.0/33"]}, "does not match"),
    ("stack-endpoint-allowed-networks", {"allowedCidrs": ["10.0.0.0"]}, "does not match"),
    ("stack-production-protection", {"productionStacks": "^(prod"}, "is not a 'regex'"),
    ("kubernetes-image-allowed-registry", {"allowedRegistries": []}, "should be non-empty"),
    ("kubernetes-image-allowed-registry", {"allowedRegistries": ["https://docker.io"]}, "does not match"),
    ("kubernetes-pod-no-privileged", {"exemptions": [{"namespace": "research", "component": "nvidia-driver-daemonset",
                                                      "reason": "a tenant asking for privilege"}]}, "is not one of"),
    ("kubernetes-pod-no-privileged", {"exemptions": [{"namespace": "gpu-operator", "component": "*",
                                                      "reason": "everything in the namespace"}]}, "does not match"),
    ("kubernetes-pod-no-privileged", {"exemptions": [{"namespace": "gpu-operator", "component": "nvidia-x"}]},
     "'reason' is a required property"),
    ("kubernetes-pod-no-privileged", {"exemtions": []}, "unknown parameter(s) exemtions"),
    ("kubernetes-rolebinding-no-cluster-admin", {"allowedCidrs": []}, "takes no parameters"),
])
def test_the_schema_refuses_bad_parameters(policy, params, message):
    infos = analyzer.policy_infos(analyzer.InProcessPack().info())
    _, problems = analyzer.reconcile(infos, {policy: params}, "policy-config.json")
    assert any(message in p and p.startswith(f"policy-config.json: {policy}") for p in problems), problems


def test_bad_parameters_fail_the_plan_as_config_errors(tmp_path):
    path = tmp_path / "policy-config.json"
    path.write_text('{"stack-endpoint-allowed-networks": {"allowedCidrs": ["10.0.0.0/33"]}}')
    result = plan_mod.plan("dev", policy_config=path)
    assert result.exit_code == plan_mod.EXIT_CONFIG
    assert any("allowedCidrs.0" in line and "policy-config.json" in line for line in result.config_errors)


def test_schema_patterns_are_portable_to_the_engines_regex():
    # The CLI validates with Go's regexp (RE2): no look-arounds or back-references.
    patterns = re.findall(r"'pattern': '([^']*)'", repr(SCHEMAS))
    assert patterns
    for pattern in patterns:
        assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), pattern


# Values that the engine's schema check lets through (Go's RE2 accepts named groups written
# `(?<name>...)`, which Python's re refuses), and some it would not: none may crash the pack.
EDGE_VALUES = {
    "allowedCidrs": [["::/0"], ["1:2:3:4:5:6:7:8:9/64"], ["0.0.0.0/0"], [], ["10.0.0.0/8", "fd00::/8"], "10.0.0.0/8",
                     [7]],
    "allowedRegistries": [["*"], [], ["docker.io"], "docker.io", [None]],
    "productionStacks": ["(?<env>prod)", "", ".*", "^(prod", 5],
    "exemptions": [[], [{"namespace": "gpu-operator", "component": "[", "reason": "an unclosed glob set"}],
                   [{"namespace": 1}], ["nvidia-driver"], {"namespace": "gpu-operator"}],
}


def _configure_raw(pack, name: str, params: dict) -> None:
    request = analyzer.configure_request({name: {"level": "mandatory", "properties": {}}})
    request.policyConfig[name].properties.update(params)
    pack.configure(request)


@pytest.mark.parametrize("param", sorted(EDGE_VALUES))
def test_rules_never_crash_on_edge_config_values(param, dev_plan):
    holders = [name for name, props in SCHEMAS.items() if param in props]
    assert holders
    # Every sample's resources, and one resource of each type the dev plan registers.
    one_per_type = {r.type: r for r in dev_plan.run.registrations}
    resources = list(one_per_type.values()) + [r for s in LOADED for r in policy_test.registrations(s)]
    requests = analyzer.Requests(resources)
    for name in holders:
        pack = analyzer.InProcessPack([BY_NAME[name]])
        for value in EDGE_VALUES[param]:
            _configure_raw(pack, name, {param: value})
            for r in requests.resources:
                pack.analyze(requests.analyze(r))
            pack.analyze_stack(requests.analyze_stack())


def test_a_pattern_python_cannot_read_fails_closed():
    prod = next(s for s in LOADED if s.policy == "stack-production-protection" and s.verdict == "disallowed")
    dev = policy_test.Sample(prod.policy, "disallowed", "dev stack", prod.file, prod.resources, "dev")
    with analyzer.InProcessPack() as pack:
        _configure_raw(pack, "stack-production-protection", {"productionStacks": "^(?<env>prod)"})
        requests = analyzer.Requests(policy_test.registrations(dev))
        response = pack.analyze_stack(requests.analyze_stack())
    messages = [d.message for d in response.diagnostics if d.policyName == "stack-production-protection"]
    assert any("not a regular expression this pack can use" in m for m in messages)
    assert any("not protected from deletion" in m for m in messages), "the dev stack is treated as production"


def test_exemptions_are_platform_namespaces_only():
    # Tenant names can never be a platform namespace (tenancy refuses them), so no exemption
    # can reach a tenant's workloads.
    assert set(PLATFORM_NAMESPACES) == RESERVED_NAMESPACES
    for namespace, *_, checks in PLATFORM_EXEMPTIONS:
        assert namespace in PLATFORM_NAMESPACES and checks
    # Every default passes its own schema (namespace enum, component pattern, reason length).
    for props in SCHEMAS.values():
        if "exemptions" in props:
            jsonschema.validate(props["exemptions"]["default"], props["exemptions"])


def test_pack_declares_a_version_for_the_cli():
    import yaml

    doc = yaml.safe_load((REPO / "policies" / "PulumiPolicy.yaml").read_text())
    assert re.match(r"^[0-9]+\.[0-9]+\.[0-9]+$", str(doc.get("version"))), doc


def test_the_harness_reports_a_failing_sample(tmp_path, served):
    (tmp_path / "x.yaml").write_text(
        "policy: kubernetes-pod-no-privileged\n"
        "allowed:\n"
        "- description: actually privileged\n"
        "  type: kubernetes:core/v1:Pod\n"
        "  props: {metadata: {name: p, namespace: research}, spec: {containers: [{name: a, image: nvcr.io/x:1, "
        "securityContext: {privileged: true}}]}}\n")
    outcomes = policy_test.run(policy_test.load(tmp_path), served)
    assert [o.passed for o in outcomes] == [False]
    assert "runs privileged" in outcomes[0].detail
    assert "| FAIL | kubernetes-pod-no-privileged | allowed | actually privileged |" in policy_test.table(outcomes)
    proc = subprocess.run([sys.executable, "-m", "stacks", "policies", "test", str(tmp_path), "--in-process"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "0 of 1 samples as expected" in proc.stdout
    (tmp_path / "x.yaml").write_text("policy: p\nallowed:\n- {description: d}\n")
    proc = subprocess.run([sys.executable, "-m", "stacks", "policies", "test", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "x.yaml: allowed[0] (d): every resource needs `type` and `props`" in proc.stdout


def test_a_pack_that_does_not_start_is_a_clear_failure(tmp_path):
    (tmp_path / "__main__.py").write_text("raise SystemExit('rules/ is missing')\n")
    with pytest.raises(analyzer.PackError, match="did not start"):
        analyzer.ServedPack(tmp_path)


def test_the_pack_and_the_project_pin_the_same_policy_runtime():
    # The CLI runs the pack in policies/venv, the plan and the tests in the project's venv.
    def pins(path):
        return dict(line.split("==") for line in path.read_text().splitlines() if "==" in line and not line.startswith("#"))

    project, pack = pins(REPO / "requirements.txt"), pins(REPO / "policies" / "requirements.txt")
    assert pack and all(project.get(name) == version for name, version in pack.items()), pack


def test_the_pack_and_the_tenants_agree_on_critical_priorities():
    from components.clusters.base import CRITICAL_PRIORITY_CLASSES
    from policies.rules import kubernetes

    assert kubernetes.CRITICAL_PRIORITY_CLASSES == CRITICAL_PRIORITY_CLASSES


def test_every_policy_of_medium_severity_or_more_blocks_the_deploy():
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import Severity

    # Advisory by design: Kueue puts unlabelled jobs in the tenant's `default` queue anyway.
    advisory = {"kubernetes-gpu-workload-queue-label"}
    for p in ALL_POLICIES:
        blocking = p.enforcement_level == EnforcementLevel.MANDATORY
        if p.name in advisory or p.severity == Severity.LOW:
            assert not blocking, f"{p.name}: a low-severity or documented advisory policy should not block"
        else:
            assert blocking and p.severity in (Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL), p.name
    # An API server open to the internet is the worst finding on every cloud.
    public = {p.name for p in ALL_POLICIES if p.severity == Severity.CRITICAL}
    assert {"aws-eks-cluster-endpoint-private", "gcp-gke-cluster-endpoint-restricted",
            "azure-aks-cluster-api-access"} <= public
