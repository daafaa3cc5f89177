"""Shared fixtures: planned stacks (run once per session), a component runner under
mocks, and the upstream reference data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacks import plan as plan_mod
from stacks.engine import Registration, Run, plain, run_program

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def dev_plan() -> plan_mod.PlanResult:
    return plan_mod.plan("dev")


@pytest.fixture(scope="session")
def prod_plan() -> plan_mod.PlanResult:
    return plan_mod.plan("prod")


CLOUD_STACKS = {
    "aws": REPO / "examples" / "Pulumi.prod-aws.yaml",
    "gcp": REPO / "examples" / "Pulumi.prod-gcp.yaml",
    "azure": REPO / "examples" / "Pulumi.prod-azure.yaml",
    "existing": REPO / "examples" / "Pulumi.prod-existing.yaml",
}


@pytest.fixture(scope="session")
def cloud_plans() -> dict[str, plan_mod.PlanResult]:
    """The same prod tenants and add-ons on each cloud."""
    return {cloud: plan_mod.plan(config_file=path) for cloud, path in CLOUD_STACKS.items()}


def plan_config(tmp_path: Path, config: dict, name: str = "test") -> plan_mod.PlanResult:
    """Plan a stack file written from `config` (keys without the ai-platform: prefix)."""
    import yaml

    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {f"ai-platform:{k}": v for k, v in config.items()}}))
    return plan_mod.plan(config_file=path)


@pytest.fixture(scope="session")
def upstream() -> Path:
    value = os.environ.get("AI_PLATFORM_UPSTREAM")
    if not value or not Path(value).is_dir():
        pytest.skip("AI_PLATFORM_UPSTREAM is not set to the pinned upstream data (.ci/run sets it)")
    return Path(value)


def run_component(build, stack: str = "test") -> Run:
    """Run `build()` under the plan's mocks; fail the test on any program error."""
    run = run_program(build, stack=stack)
    if run.error is not None:
        raise run.error
    return run


def inputs(r: Registration) -> dict:
    return plain(r.inputs)


def of_type(run: Run, type_: str) -> list[Registration]:
    return run.by_type(type_)
