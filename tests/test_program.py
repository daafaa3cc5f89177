"""The Pulumi program as `pulumi up` runs it: config arrives through PULUMI_CONFIG, and a
bad stack file stops the program with a RunError (printed by Pulumi without a traceback)
before anything is registered."""

from __future__ import annotations

import json

import pulumi

from stacks.config import StackConfigError
from stacks.engine import run_program

from .conftest import REPO

GOOD = {
    "ai-platform:environment": "dev",
    "ai-platform:clusters": json.dumps([{"name": "primary", "cloud": "aws", "region": "us-east-2"}]),
    "ai-platform:tenants": json.dumps([{"name": "team-a", "gpus": 0}]),
}


def test_program_reads_config_the_way_the_pulumi_engine_passes_it(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(GOOD))
    monkeypatch.delenv("AI_PLATFORM_CONFIG_SOURCE", raising=False)
    run = run_program(str(REPO / "__main__.py"), stack="staging", config={})
    assert run.error is None, run.error
    (eks,) = run.by_type("aws:eks/cluster:Cluster")
    assert eks.inputs["name"] == "ai-platform-staging-primary"
    assert [n.inputs["metadata"]["name"] for n in run.by_type("kubernetes:core/v1:Namespace")
            if "ai-platform.io/tenant" in n.inputs["metadata"]["labels"]] == ["team-a"]


def test_bad_config_stops_pulumi_up_with_a_run_error_naming_the_stack_file(monkeypatch):
    monkeypatch.delenv("AI_PLATFORM_CONFIG_SOURCE", raising=False)
    bad = {**GOOD, "ai-platform:tenant": "[]"}
    run = run_program(str(REPO / "__main__.py"), stack="staging", config=bad)
    assert isinstance(run.error, StackConfigError) and isinstance(run.error, pulumi.RunError)
    assert "Pulumi.staging.yaml: ai-platform:tenant: unknown key; did you mean 'tenants'?" in str(run.error)
    assert "nothing was deployed" in str(run.error)
    assert run.resources == []


def test_registrations_are_in_flight_before_the_sdk_waits_on_outputs(monkeypatch):
    """The SDK's shutdown wait awaits in-flight RPCs one by one. A program that returns before
    any has started sends it to `asyncio.wait` over every pending Output instead, re-armed on
    each wake-up: O(pending Outputs) per step of a cluster's dependency chain. That was most
    of the plan's time at 500 tenants."""
    import asyncio

    waited: list[int] = []
    real_wait = asyncio.wait

    async def recording_wait(fs, *args, **kwargs):
        waited.append(len(fs))
        return await real_wait(fs, *args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", recording_wait)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(GOOD))
    monkeypatch.delenv("AI_PLATFORM_CONFIG_SOURCE", raising=False)
    run = run_program(str(REPO / "__main__.py"), stack="staging", config={})
    assert run.error is None, run.error
    assert len(run.registrations) > 80
    # What is left after the RPCs drain is the stack's own outputs, not the resource graph.
    assert sum(waited) < len(run.registrations), waited


def test_the_graph_is_frozen_for_the_run_and_released_after_it(monkeypatch):
    """`pulumi up` exits after the program; the offline engine runs many programs in one
    process, so it must hand the frozen graph back to the collector."""
    import gc

    frozen: list[int] = []
    real_freeze = gc.freeze

    def recording_freeze():
        real_freeze()
        frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(gc, "freeze", recording_freeze)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(GOOD))
    monkeypatch.delenv("AI_PLATFORM_CONFIG_SOURCE", raising=False)
    run = run_program(str(REPO / "__main__.py"), stack="staging", config={})
    assert run.error is None, run.error
    assert frozen and frozen[0] > 10_000
    assert gc.get_freeze_count() == 0


def test_two_resources_with_the_same_urn_fail_the_plan_as_they_fail_pulumi_up():
    import pulumi_kubernetes as k8s

    def program():
        k8s.core.v1.Namespace("research")
        k8s.core.v1.Namespace("research")

    error = run_program(program, stack="test").error
    assert error is not None and "Duplicate resource URN" in str(error)
    assert run_program(lambda: k8s.core.v1.Namespace("research"), stack="test").error is None
