"""The policy pack, evaluated the way the Pulumi engine evaluates it.

The engine starts the pack (`python -u -m pulumi.policy <engine> .` in `policies/`), reads
the port it prints, and speaks the Analyzer gRPC protocol: `Handshake`, `ConfigureStack`,
`GetAnalyzerInfo`, `Configure` (every policy's enforcement level and parameters, defaults
filled in from the policies' schemas and validated against them), `Analyze` per resource
(its inputs) and `AnalyzeStack` once (every resource's outputs). `pulumi_policy` turns the
wire properties into proxies (`_DictProxy`, `_ListProxy`, unknowns raising) before a rule
sees them.

Two packs speak that protocol here, fed the same protobuf requests:

- `InProcessPack`: pulumi_policy's own servicer, called directly (no process, no socket).
  The offline plan uses it: same deserialization, proxies, config handling and diagnostics.
- `ServedPack`: the real server, started as the engine starts it and called over gRPC.
  `python -m stacks policies test` and the tests use it, and the tests assert that both give
  identical verdicts on the dev and prod plans and on every policy sample.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jsonschema
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from .engine import OUTPUT_SIG, RESOURCE_REF_SIG, SECRET_SIG, SIG_KEY, Registration

PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
# `PolicyPack` always reports this version (the CLI takes the real one from PulumiPolicy.yaml);
# the in-process servicer uses it too so that its diagnostics match the served pack's word for word.
SERVED_VERSION = "0.0.1"
UNKNOWN = UNKNOWN_STRING_VALUE  # the engine's marker for a computed value
LEVELS = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory",
          analyzer_pb2.REMEDIATE: "remediate", analyzer_pb2.DISABLED: "disabled"}
LEVEL_ENUM = {name: value for value, name in LEVELS.items()}
LEVEL_NAMES = tuple(LEVEL_ENUM)


class PackError(Exception):
    """The pack failed as the engine would see it fail (a crash, a server that did not start)."""


@dataclass(frozen=True)
class Verdict:
    """One diagnostic of the pack: a violation, or a policy that could not run (unknowns)."""

    policy: str
    urn: str
    level: str
    message: str


# -- requests, built the way the engine builds them ------------------------------------------


def engine_form(value: Any) -> Any:
    """The SDK's wire form as the engine forwards it to analyzers: output values resolved (a
    computed one becomes the unknown marker), secrets kept as secret objects, resource
    references as their ID (their URN when the ID is unknown)."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return {SIG_KEY: SECRET_SIG, "value": engine_form(value.get("value"))}
        if sig == OUTPUT_SIG:
            inner = engine_form(value["value"]) if "value" in value else UNKNOWN
            return {SIG_KEY: SECRET_SIG, "value": inner} if value.get("secret") else inner
        if sig == RESOURCE_REF_SIG:
            return value.get("id") or value.get("urn")
        return {k: engine_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [engine_form(v) for v in value]
    return value


def struct(props: Mapping | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if props:
        out.update(engine_form(dict(props)))
    return out


def _options(r: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=r.protect, ignoreChanges=list(r.ignore_changes), parent=r.parent or "")


class Requests:
    """Analyze and AnalyzeStack requests for the registrations of one run."""

    def __init__(self, registrations: Iterable[Registration]):
        everything = list(registrations)
        by_urn = {r.urn: r for r in everything}
        self.resources = [r for r in everything if r.type != "pulumi:pulumi:Stack"]
        self._providers: dict[str, analyzer_pb2.AnalyzerProviderResource] = {}
        for r in self.resources:
            if r.type.startswith("pulumi:providers:"):
                self._providers[r.urn] = analyzer_pb2.AnalyzerProviderResource(
                    type=r.type, properties=struct(r.inputs), urn=r.urn, name=r.name)
        self._by_urn = by_urn

    def _provider(self, r: Registration) -> dict:
        provider = self._providers.get(r.provider_urn)
        return {"provider": provider} if provider is not None else {}

    def analyze(self, r: Registration) -> analyzer_pb2.AnalyzeRequest:
        """The engine analyzes a resource's inputs."""
        return analyzer_pb2.AnalyzeRequest(type=r.type, properties=struct(r.inputs), urn=r.urn, name=r.name,
                                           options=_options(r), **self._provider(r))

    def analyze_stack(self) -> analyzer_pb2.AnalyzeStackRequest:
        """...and the whole stack's outputs (inputs where a resource has none)."""
        return analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type, properties=struct(r.outputs or r.inputs), urn=r.urn, name=r.name, options=_options(r),
                parent=r.parent or "", dependencies=[d for d in r.dependencies if d in self._by_urn],
                **self._provider(r))
            for r in self.resources
        ])


# -- configuration, reconciled and validated the way the CLI does it --------------------------


def policy_infos(info: analyzer_pb2.AnalyzerInfo) -> dict[str, dict]:
    """name -> {level, schema: {properties, required}} from GetAnalyzerInfo."""
    out = {}
    for p in info.policies:
        schema = json_format.MessageToDict(p.configSchema) if p.HasField("configSchema") else None
        out[p.name] = {"level": LEVELS.get(p.enforcementLevel, "advisory"), "schema": schema}
    return out


def _schema(policy_schema: dict) -> dict:
    # The CLI validates each policy's parameters against {type: object, properties, required}.
    out: dict[str, Any] = {"type": "object"}
    if policy_schema.get("properties"):
        out["properties"] = policy_schema["properties"]
    if policy_schema.get("required"):
        out["required"] = policy_schema["required"]
    return out


def reconcile(infos: Mapping[str, dict], doc: Mapping[str, Any], label: str) -> tuple[dict[str, dict], list[str]]:
    """({policy: {level, properties}}, problems) for a `--policy-pack-config` document: schema
    defaults first, then `all`, then each policy's entry; parameters validated against the
    policy's schema (with formats), as `pulumi preview --policy-pack-config` does."""
    problems: list[str] = []
    result: dict[str, dict] = {}
    for name, info in infos.items():
        props = {k: v["default"] for k, v in ((info["schema"] or {}).get("properties") or {}).items() if "default" in v}
        result[name] = {"level": info["level"], "properties": props}
    all_level = doc.get("all")
    for name, entry in doc.items():
        level = entry if isinstance(entry, str) else entry.get("enforcementLevel") if isinstance(entry, Mapping) else None
        if name != "all" and name not in infos:
            problems.append(f"{label}: {name}: no such policy")
        elif not isinstance(entry, (str, Mapping)):
            problems.append(f"{label}: {name}: must be an enforcement level or an object")
        elif level is not None and level not in LEVEL_NAMES:
            problems.append(f"{label}: {name}: enforcement level must be one of {', '.join(LEVEL_NAMES)}")
    if problems:
        return result, problems
    if isinstance(all_level, str):
        for settings in result.values():
            settings["level"] = all_level
    for name, entry in doc.items():
        if name == "all":
            continue
        if isinstance(entry, str):
            result[name]["level"] = entry
            continue
        if "enforcementLevel" in entry:
            result[name]["level"] = entry["enforcementLevel"]
        given = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        schema = infos[name]["schema"]
        if given and schema is None:
            problems.append(f"{label}: {name}: takes no parameters (got {', '.join(sorted(given))})")
            continue
        if schema is not None:
            unknown = sorted(set(given) - set(schema.get("properties") or {}))
            if unknown:
                problems.append(f"{label}: {name}: unknown parameter(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(schema.get('properties') or {}))}")
            validator = jsonschema.Draft7Validator(_schema(schema), format_checker=jsonschema.FormatChecker())
            for error in sorted(validator.iter_errors(given), key=lambda e: list(e.absolute_path)):
                where = ".".join(str(p) for p in error.absolute_path) or "(parameters)"
                problems.append(f"{label}: {name}: {where}: {error.message}")
        result[name]["properties"].update(given)
    return result, problems


def configure_request(config: Mapping[str, dict]) -> analyzer_pb2.ConfigureAnalyzerRequest:
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, settings in config.items():
        entry = request.policyConfig[name]
        entry.enforcementLevel = LEVEL_ENUM[settings["level"]]
        if settings["properties"]:
            entry.properties.update(settings["properties"])
    return request


# -- the two packs --------------------------------------------------------------------------


class InProcessPack:
    """pulumi_policy's Analyzer servicer for the pack's policies, called in this process."""

    def __init__(self, policies: Iterable | None = None, name: str | None = None):
        from policies.rules import ALL_POLICIES, PACK_NAME

        self._servicer = _PolicyAnalyzerServicer(
            name or PACK_NAME, SERVED_VERSION, list(policies if policies is not None else ALL_POLICIES),
            EnforcementLevel.ADVISORY)

    def handshake(self) -> None:
        return None

    def configure_stack(self, request) -> None:
        self._servicer.ConfigureStack(request, None)

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        return self._servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)

    def configure(self, request) -> None:
        self._servicer.Configure(request, None)

    def analyze(self, request) -> analyzer_pb2.AnalyzeResponse:
        return self._servicer.Analyze(request, None)

    def analyze_stack(self, request) -> analyzer_pb2.AnalyzeResponse:
        return self._servicer.AnalyzeStack(request, None)

    def close(self) -> None:
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ServedPack(InProcessPack):
    """The pack's own Analyzer server, started the way the Pulumi engine starts it."""

    def __init__(self, pack_dir: Path = PACK_DIR, python: str | None = None, timeout: float = 60):
        # A file, not a pipe, for stderr: nobody drains it while the pack serves.
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            # The engine's command line; the engine address is not used by Python packs.
            [python or sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."],
            cwd=pack_dir, stdout=subprocess.PIPE, stderr=self._stderr, env=_pack_env())
        line = self._proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self._proc.kill()
            self._proc.wait()
            self._stderr.seek(0)
            err = self._stderr.read().decode(errors="replace").strip().splitlines()
            self.close()
            raise PackError(f"the policy pack in {pack_dir} did not start: {err[-1] if err else line or 'no port printed'}")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(self._channel).result(timeout=timeout)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)

    def _call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request)
        except grpc.RpcError as exc:
            raise PackError(f"policy pack {method} failed: {exc.code().name}: {exc.details()}") from None

    def handshake(self) -> None:
        try:
            self._stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(engine_address="127.0.0.1:0"))
        except grpc.RpcError as exc:
            # Python packs do not implement Handshake; the engine falls back as we do.
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise PackError(f"policy pack Handshake failed: {exc.details()}") from None

    def configure_stack(self, request) -> None:
        self._call("ConfigureStack", request)

    def info(self):
        return self._call("GetAnalyzerInfo", empty_pb2.Empty())

    def configure(self, request) -> None:
        self._call("Configure", request)

    def analyze(self, request):
        return self._call("Analyze", request)

    def analyze_stack(self, request):
        return self._call("AnalyzeStack", request)

    def close(self) -> None:
        if getattr(self, "_channel", None) is not None:
            self._channel.close()
            self._channel = None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        for stream in (self._proc.stdout, self._stderr):
            if stream is not None and not stream.closed:
                stream.close()


def _pack_env() -> dict[str, str]:
    env = dict(os.environ)
    # The pack imports only pulumi, pulumi_policy and its own rules, like under the CLI.
    env.pop("PYTHONPATH", None)
    return env


# -- a run ----------------------------------------------------------------------------------


def _message(d) -> str:
    # pulumi_policy prefixes every message with the policy's description.
    prefix = f"{d.description}\n"
    return d.message[len(prefix):] if d.message.startswith(prefix) else d.message


def evaluate(pack, registrations: Iterable[Registration], config: Mapping[str, dict], stack: str = "",
             project: str = "") -> list[Verdict]:
    """Every diagnostic of `pack` for a run: Configure, Analyze per resource, AnalyzeStack."""
    requests = Requests(registrations)
    pack.handshake()
    pack.configure_stack(analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, project=project, dry_run=True))
    pack.configure(configure_request(config))
    out: list[Verdict] = []
    for r in requests.resources:
        try:
            response = pack.analyze(requests.analyze(r))
        except PackError:
            raise
        except Exception as exc:  # the engine sees the pack fail (gRPC UNKNOWN) and stops
            raise PackError(f"the policy pack crashed on {r.urn}: {type(exc).__name__}: {exc}") from exc
        out += [Verdict(d.policyName, d.urn or r.urn, LEVELS.get(d.enforcementLevel, "advisory"), _message(d))
                for d in response.diagnostics]
    try:
        response = pack.analyze_stack(requests.analyze_stack())
    except PackError:
        raise
    except Exception as exc:
        raise PackError(f"the policy pack crashed analyzing the stack: {type(exc).__name__}: {exc}") from exc
    out += [Verdict(d.policyName, d.urn, LEVELS.get(d.enforcementLevel, "advisory"), _message(d))
            for d in response.diagnostics]
    return out
