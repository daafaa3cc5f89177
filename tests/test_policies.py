"""The policy pack: every policy has allowed and disallowed samples (gatekeeper-library
style), evaluated through the same code path the offline plan uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policies.rules import ALL_POLICIES
from stacks.engine import Registration, Run
from stacks.plan import run_policies

from .conftest import REPO

SAMPLES = Path(__file__).resolve().parent / "policy_samples"
BY_NAME = {p.name: p for p in ALL_POLICIES}


def _samples() -> list[tuple[str, str, dict]]:
    out = []
    for f in sorted(SAMPLES.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        for verdict in ("allowed", "disallowed"):
            for sample in doc.get(verdict) or []:
                out.append((doc["policy"], verdict, sample))
    return out


def _run_for(sample: dict) -> Run:
    """A Run holding the sample's resources, as the plan would record them."""
    stack = sample.get("stack", "samples")
    run = Run(stack=stack, project="ai-platform")
    providers = set()
    for i, r in enumerate(sample.get("resources") or [sample]):
        provider = r.get("provider", "")
        provider_urn = f"urn:pulumi:{stack}::ai-platform::pulumi:providers:kubernetes::{provider}" if provider else ""
        if provider and provider not in providers:
            providers.add(provider)
            run.registrations.append(Registration(provider_urn, "pulumi:providers:kubernetes", provider, "", True, "",
                                                  {}, [], False, [], {}))
        name = r.get("name", f"r{i}")
        urn = f"urn:pulumi:{stack}::ai-platform::{r['type']}::{name}"
        run.registrations.append(
            Registration(urn, r["type"], name, "", True, f"{provider_urn}::id" if provider else "", r["props"], [],
                         bool(r.get("protect")), [], r["props"])
        )
    return run


def test_every_policy_has_allowed_and_disallowed_samples():
    seen = {(name, verdict) for name, verdict, _ in _samples()}
    missing = [
        f"{p.name}: {verdict}" for p in ALL_POLICIES for verdict in ("allowed", "disallowed") if (p.name, verdict) not in seen
    ]
    assert not missing, f"policies without samples: {missing}"
    unknown = {name for name, _, _ in _samples()} - set(BY_NAME)
    assert not unknown, f"samples for policies that do not exist: {unknown}"


@pytest.mark.parametrize(
    ("policy", "verdict", "sample"),
    _samples(),
    ids=[f"{n}-{v}-{s['description']}" for n, v, s in _samples()],
)
def test_sample(policy, verdict, sample):
    config = {policy: sample["config"]} if sample.get("config") else None
    violations = [v for v in run_policies(_run_for(sample), [BY_NAME[policy]], config=config)]
    if verdict == "allowed":
        assert violations == []
    else:
        assert violations and all(v.policy == policy for v in violations)


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
