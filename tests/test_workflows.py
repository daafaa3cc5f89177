"""The CI workflows: linted with zizmor (offline), PR checks need no secrets, and the
trusted preview runs the policy pack with OIDC credentials."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_workflows_pass_zizmor():
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    proc = subprocess.run([zizmor, "--offline", "--config", str(REPO / ".github" / "zizmor.yml"), str(WORKFLOWS)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pull_requests_run_tests_and_plan_every_stack_without_secrets():
    text = (WORKFLOWS / "pr.yml").read_text()
    pr = load("pr.yml")
    assert list(pr[True]) == ["pull_request"]  # YAML 1.1 reads `on` as True
    assert "secrets." not in text and "id-token" not in text
    assert pr["permissions"] == {"contents": "read"}
    steps = pr["jobs"]["test-and-plan"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make test" in runs and "python -m stacks plan --config" in runs
    # The loop covers every stack file in the repository.
    assert "Pulumi.dev.yaml Pulumi.prod.yaml examples/Pulumi.prod-*.yaml" in runs
    stack_files = {p.name for p in REPO.glob("Pulumi.*.yaml")} - {"Pulumi.yaml"}
    assert stack_files == {"Pulumi.dev.yaml", "Pulumi.prod.yaml"}


def test_trusted_preview_runs_the_policy_pack_with_oidc():
    preview = load("preview.yml")
    assert set(preview[True]) == {"push", "workflow_dispatch"}
    assert preview[True]["push"]["branches"] == ["main"]
    job = preview["jobs"]["preview"]
    assert job["permissions"]["id-token"] == "write"
    configs = {i["stack"]: i["policy-config"] for i in job["strategy"]["matrix"]["include"]}
    assert all((REPO / path).is_file() for path in configs.values())
    pulumi = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"] == "${{ matrix.policy-config }}"
    assert pulumi["with"]["pulumi-version"] == "3.272.0"
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    assert "secrets." not in (WORKFLOWS / "preview.yml").read_text()
