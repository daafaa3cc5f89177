"""Runs a Pulumi program in-process under the mock runtime and records every
registration the way the engine would see it (type, parent, provider, inputs with
their wire names, dependencies, protect, ignoreChanges) plus the stack outputs."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config

from .mocks import PlatformMocks

# Markers of the Pulumi wire format (sdk/go/common/resource/sig).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    inputs: Any  # wire form: secrets still wrapped
    dependencies: list[str]
    protect: bool
    ignore_changes: list[str]
    outputs: Any = None
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    id: str = ""
    """The provider's ID the mocks gave it (what other resources' inputs refer to)."""

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""


@dataclass
class Run:
    stack: str
    project: str
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    component_outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    logs: list[tuple[int, str]] = field(default_factory=list)
    result: Any = None

    @property
    def resources(self) -> list[Registration]:
        """Everything but the root stack."""
        return [r for r in self.registrations if r.type != "pulumi:pulumi:Stack"]

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def get(self, urn: str) -> Registration | None:
        # Indexed once per size of the run: the checks look up every object's provider and
        # cluster, and a scan per lookup is quadratic at hundreds of tenants.
        index = self.__dict__.get("_index")
        if index is None or index[0] != len(self.registrations):
            index = (len(self.registrations), {r.urn: r for r in self.registrations})
            self.__dict__["_index"] = index
        return index[1].get(urn)

    def cluster_of(self, r: Registration) -> Registration | None:
        """The cluster component a Kubernetes resource goes to: the parent of its provider."""
        provider = self.get(r.provider_urn)
        return self.get(provider.parent) if provider is not None else None

    def one(self, type_: str, name: str) -> Registration:
        found = [r for r in self.registrations if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} {type_} named {name!r}")
        return found[0]


def _ints(value: Any) -> Any:
    # protobuf Structs carry every number as a double; Kubernetes wants ports as ints.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _struct(message) -> Any:
    return _ints(json_format.MessageToDict(message, preserving_proto_field_name=True))


def plain(value: Any, secret: Any = None) -> Any:
    """Unwraps the wire form: secrets become their value (or `secret` when given),
    resource references their URN."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return secret if secret is not None else plain(value.get("value"), secret)
        if sig == RESOURCE_REF_SIG:
            return value.get("urn")
        if sig == OUTPUT_SIG:
            if value.get("secret"):
                return secret if secret is not None else plain(value.get("value"), secret)
            return plain(value.get("value"), secret)
        return {k: plain(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, secret) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, run: Run):
        super().__init__(mocks)
        self.run = run
        self.urns: set[str] = set()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        # The engine refuses a second resource with the same URN (same type, name and parent type chain).
        if response.urn in self.urns:
            raise ValueError(f"Duplicate resource URN '{response.urn}'; try giving it a unique name")
        self.urns.add(response.urn)
        self.run.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                provider=request.provider,
                inputs=_struct(request.object),
                dependencies=list(request.dependencies),
                protect=bool(request.protect),
                ignore_changes=list(request.ignoreChanges),
                outputs=_struct(response.object) if response.object else {},
                replace_on_changes=list(request.replaceOnChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                id=response.id,
            )
        )
        return response

    def RegisterResourceOutputs(self, request):
        outputs = _struct(request.outputs)
        if request.urn.split("::")[-2] == "pulumi:pulumi:Stack":
            self.run.outputs = outputs
        else:
            self.run.component_outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


class _LogCollector(logging.Handler):
    def __init__(self, run: Run):
        super().__init__(logging.DEBUG)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.logs.append((record.levelno, record.getMessage()))


def run_program(
    program: Callable[[], Any] | str,
    *,
    stack: str,
    project: str = "ai-platform",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
) -> Run:
    """Run `program` (a callable, or the path of a `__main__.py`) as `pulumi up` would,
    against mocks. Each call is isolated: its own context, event loop and monitor."""
    run = Run(stack=stack, project=project)

    def body() -> None:
        logger = logging.getLogger(f"ai-platform.plan.{id(run)}")
        logger.propagate = False
        logger.addHandler(_LogCollector(run))
        monitor = _RecordingMonitor(mocks or PlatformMocks(), run)
        settings = pulumi_mocks.MockSettings(
            monitor=monitor,
            monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
            engine=pulumi_mocks.MockEngine(logger),
            project=project,
            stack=stack,
            dry_run=False,
            organization="organization",
            callbacks=None,
        )
        pulumi_settings.configure(settings)
        set_all_config(dict(config or {}), list(secret_keys or []))

        def entry() -> None:
            if callable(program):
                run.result = program()
            else:
                runpy.run_path(program, run_name="__main__")

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(pulumi.runtime.run_in_stack(entry))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            run.error = exc
        finally:
            loop.close()
            asyncio.set_event_loop(None)
            # The program froze its resource graph (start_registrations); a real program exits
            # here, but tests and the benchmark run many programs in one process.
            gc.unfreeze()

    contextvars.Context().run(body)
    return run
