"""`python -m stacks policies test <samples dir>`: allowed and disallowed samples through the
served policy pack (gatekeeper-library style), printed as a table.

A samples file is YAML, one per policy:

    policy: kubernetes-pod-no-privileged
    allowed:
    - description: unprivileged
      type: kubernetes:apps/v1:Deployment       # one resource: type, props (and name, protect)
      props: {...}
    disallowed:
    - description: privileged, in a second stack
      stack: prod                               # optional: the stack name in the URNs
      config: {...}                             # optional: this policy's config (as in policy-config.json)
      resources:                                # several resources: each type, props, name,
      - {type: ..., name: ..., props: ..., provider: cluster-a, protect: true}

`provider` puts Kubernetes resources on a named cluster (a `pulumi:providers:kubernetes`).
A value written `!unknown` is one the engine cannot know during preview.

A sample passes when the pack reports its policy (allowed: never; disallowed: at least once)
and reports nothing else for that policy. Other policies' verdicts on the sample are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import analyzer
from .engine import Registration

PROJECT = "ai-platform"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unknown", lambda loader, node: analyzer.UNKNOWN)


class SampleError(Exception):
    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Sample:
    policy: str
    verdict: str  # allowed | disallowed
    description: str
    file: str
    resources: list[dict]
    stack: str = "samples"
    config: dict | None = None


@dataclass
class Outcome:
    sample: Sample
    passed: bool
    verdicts: list[analyzer.Verdict] = field(default_factory=list)
    detail: str = ""


def load(folder: Path) -> list[Sample]:
    """Every sample of every `*.yaml` file in `folder`; a malformed file is a SampleError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SampleError([f"{folder}: no such folder of policy samples"])
    samples, problems = [], []
    for path in sorted(folder.glob("*.y*ml")):
        try:
            doc = yaml.load(path.read_text(), Loader=_Loader) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{path.name}: not valid YAML: {exc}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("policy"), str):
            problems.append(f"{path.name}: needs `policy: <name>` and `allowed:`/`disallowed:` lists")
            continue
        for verdict in ("allowed", "disallowed"):
            for i, s in enumerate(doc.get(verdict) or []):
                where = f"{path.name}: {verdict}[{i}]"
                if not isinstance(s, dict) or not s.get("description"):
                    problems.append(f"{where}: needs a description")
                    continue
                resources = s.get("resources") or [s]
                bad = [j for j, r in enumerate(resources)
                       if not isinstance(r, dict) or not isinstance(r.get("type"), str) or "props" not in r]
                if bad:
                    problems.append(f"{where} ({s['description']}): every resource needs `type` and `props`")
                    continue
                samples.append(Sample(doc["policy"], verdict, s["description"], path.name, resources,
                                      str(s.get("stack", "samples")), s.get("config")))
    if problems:
        raise SampleError(problems)
    return samples


def registrations(sample: Sample) -> list[Registration]:
    """The sample's resources as the program would have registered them."""
    out: list[Registration] = []
    providers: set[str] = set()
    for i, r in enumerate(sample.resources):
        provider = str(r.get("provider", ""))
        provider_urn = f"urn:pulumi:{sample.stack}::{PROJECT}::pulumi:providers:kubernetes::{provider}" if provider else ""
        if provider and provider not in providers:
            providers.add(provider)
            out.append(Registration(provider_urn, "pulumi:providers:kubernetes", provider, "", True, "", {}, [], False,
                                    []))
        name = str(r.get("name", f"r{i}"))
        props: Any = r["props"] or {}
        out.append(Registration(f"urn:pulumi:{sample.stack}::{PROJECT}::{r['type']}::{name}", r["type"], name, "", True,
                                f"{provider_urn}::id" if provider else "", props, [], bool(r.get("protect")), [],
                                props))
    return out


def run(samples: Iterable[Sample], pack) -> list[Outcome]:
    """Each sample through `pack` (served or in-process): its own config, Analyze, AnalyzeStack."""
    infos = analyzer.policy_infos(pack.info())
    outcomes = []
    for sample in samples:
        if sample.policy not in infos:
            outcomes.append(Outcome(sample, False, detail=f"no policy {sample.policy!r} in the pack"))
            continue
        config, problems = analyzer.reconcile(
            infos, {sample.policy: sample.config} if sample.config else {}, f"{sample.file} config")
        if problems:
            outcomes.append(Outcome(sample, False, detail="; ".join(problems)))
            continue
        try:
            verdicts = [v for v in analyzer.evaluate(pack, registrations(sample), config, sample.stack, PROJECT)
                        if v.policy == sample.policy]
        except analyzer.PackError as exc:  # a crash fails the engine's whole run: never as expected
            outcomes.append(Outcome(sample, False, detail=str(exc)))
            continue
        if sample.verdict == "allowed":
            passed = not verdicts
        else:
            passed = any(not v.message.startswith("can't run policy") for v in verdicts)
        detail = "; ".join(v.message.splitlines()[0] for v in verdicts)[:160]
        outcomes.append(Outcome(sample, passed, verdicts, detail))
    return outcomes


def missing(samples: Iterable[Sample], policy_names: Iterable[str]) -> list[str]:
    seen = {(s.policy, s.verdict) for s in samples}
    return [f"{name}: no {verdict} sample" for name in policy_names for verdict in ("allowed", "disallowed")
            if (name, verdict) not in seen]


def table(outcomes: list[Outcome]) -> str:
    lines = ["| result | policy | sample | description | verdicts |", "| --- | --- | --- | --- | --- |"]
    for o in outcomes:
        cells = ["ok" if o.passed else "FAIL", o.sample.policy, o.sample.verdict, o.sample.description,
                 o.detail or "-"]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def main(folder: str, require_all: bool = False, in_process: bool = False) -> int:
    try:
        samples = load(Path(folder))
    except SampleError as exc:
        print("\n".join(exc.lines))
        return 2
    pack = analyzer.InProcessPack() if in_process else analyzer.ServedPack()
    with pack:
        outcomes = run(samples, pack)
        names = list(analyzer.policy_infos(pack.info()))
    print(table(outcomes))
    failed = [o for o in outcomes if not o.passed]
    gaps = missing(samples, names) if require_all else []
    for gap in gaps:
        print(f"missing: {gap}")
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} samples as expected "
          f"({'in-process' if in_process else 'served'} pack){'; ' + str(len(gaps)) + ' missing' if gaps else ''}.")
    return 1 if failed or gaps else 0
