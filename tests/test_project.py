"""The project skeleton: Pulumi.yaml schema, pinned dependencies and chart versions."""

from __future__ import annotations

import json
import re

import jsonschema
import yaml

from components.addons import versions

from .conftest import REPO


def test_pulumi_yaml_is_valid_against_the_project_schema(upstream):
    schema = json.loads((upstream / "pulumi" / "project.schema.json").read_text())
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    jsonschema.validate(project, schema)
    assert project["name"] == "ai-platform"
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"]


def test_every_requirement_is_pinned():
    for path in (REPO / "requirements.txt", REPO / "policies" / "requirements.txt"):
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.\-+]+", line), f"{path.name}: {line!r} is not pinned"


def test_every_chart_has_its_upstream_values_at_the_pinned_version(upstream):
    for chart in versions.CHARTS:
        if chart.values_file:
            assert (upstream / "charts" / chart.values_file).is_file(), chart


def test_autoscaler_image_tag_matches_each_kubernetes_minor():
    for minor, tag in versions.CLUSTER_AUTOSCALER_TAGS.items():
        assert tag.startswith(f"v{minor}."), (minor, tag)


def test_stack_files_use_only_the_project_namespace_and_providers():
    for f in REPO.glob("Pulumi.*.yaml"):
        keys = yaml.safe_load(f.read_text())["config"]
        assert all(k.split(":")[0] in {"ai-platform", "aws"} for k in keys), f.name


def _section(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:start -->\n", 1)[1].split(f"\n<!-- {name}:end -->", 1)[0]


def test_readme_config_reference_and_policy_table_are_generated_from_code():
    from stacks.reference import markdown, policy_markdown, role_markdown

    readme = (REPO / "README.md").read_text()
    assert _section(readme, "config-reference") == markdown(), "run: python -m stacks config-reference"
    assert _section(readme, "policies") == policy_markdown(), "run: python -m stacks policies"
    assert _section(readme, "tenant-roles") == role_markdown(), "regenerate from stacks.reference.role_markdown()"


def test_readme_keeps_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make plan", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_upstream_download_writes_every_pinned_file(tmp_path, upstream):
    """Every file we pin is in the shared data and `make upstream` writes the same bytes
    (the folder may hold more: reference data for later add-ons)."""
    from stacks import upstream as up

    pinned = {name for name, *_ in up.FILES}
    local = {p.name: p for p in upstream.rglob("*") if p.is_file() and p.name in pinned}
    assert pinned == set(local), f"pinned but missing upstream: {sorted(pinned - set(local))}"
    urls = []

    def fake_fetch(url: str) -> bytes:  # serve git's content (before release substitutions)
        urls.append(url)
        name = next(n for n, r, c, p in up.FILES if url == f"https://raw.githubusercontent.com/{r}/{c}/{p}")
        text = local[name].read_text()
        for old, new in up.RELEASE_SUBSTITUTIONS.get(name, ()):
            assert new in text, (name, new)
            text = text.replace(new, old)
        return text.encode()

    written = up.download(tmp_path, fetch=fake_fetch)
    assert len(written) == len(up.FILES) == len(urls)
    for path in written:
        assert path.read_bytes() == local[path.name].read_bytes(), path.name
        assert path.relative_to(tmp_path).parts[0] == local[path.name].parent.name


def test_every_pinned_chart_version_is_a_published_chart(upstream):
    """The published chart (sources as packaged) exists at exactly the version we pin."""
    for chart in versions.CHARTS:
        src = upstream / "charts-src" / chart.source
        assert (src / "Chart.yaml").is_file(), f"{chart.name} {chart.version}: no published chart {src.name}"
        published = str(yaml.safe_load((src / "Chart.yaml").read_text())["version"])
        assert published.lstrip("v") == chart.version.lstrip("v"), (chart, published)
        if chart.upstream:
            assert chart.upstream.endswith(f"-{chart.version}"), chart


def test_every_component_type_token_names_its_class_and_none_is_shared():
    # URNs are built from type tokens: a renamed token replaces the component's whole subtree on the next
    # `pulumi up`, and a shared one makes two components indistinguishable in `pulumi stack`.
    import ast

    tokens: dict[str, str] = {}
    for path in sorted((REPO / "components").rglob("*.py")):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            for node in ast.walk(cls):
                literal = None
                if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["type_token"]:
                    literal = node.value
                elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "__init__"
                      and isinstance(getattr(node.func, "value", None), ast.Call) and node.args):
                    literal = node.args[0]
                if isinstance(literal, ast.Constant) and str(literal.value).startswith("ai-platform:"):
                    assert literal.value not in tokens, f"{literal.value} is both {tokens[literal.value]} and {cls.name}"
                    tokens[literal.value] = cls.name
    assert len(tokens) >= 15  # every component of components/, clusters included
    for token, cls in tokens.items():
        assert re.fullmatch(r"ai-platform:[a-z]+:[A-Za-z]+", token) and token.endswith(f":{cls}"), token
