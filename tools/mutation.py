"""Mutation testing: change one small thing in a module, run the tests that cover it, and see
whether any fails. A mutant that survives is behaviour no test pins.

    python -m tools.mutation components/tenancy.py [more modules] [--tests tests/test_x.py ...]
                             [--jobs 2] [--timeout 900] [--limit N] [--json report.json]

Each mutant runs in its own copy of the working tree (one per job, so the real files are never
touched), with `pytest -x` on the module's tests (TESTS below, or `--tests`). Mutations, by AST:
comparison operators flipped, `and`/`or` swapped, `not` dropped, booleans flipped, numbers
moved by one, strings changed, one element dropped from a list/tuple/set literal, one entry
dropped from a dict literal, an `if` condition negated. Docstrings, f-strings, messages of
exceptions and reports, and type annotations are left alone: changing them is not a change
of behaviour. It prints the score per module and every survivor as file:line: change.

Slow (minutes per module): run it before a release, not in CI.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Which tests cover which module (the default for `--tests`).
TESTS: dict[str, list[str]] = {
    "components/tenancy.py": ["tests/test_tenancy.py", "tests/test_guardrails.py", "tests/test_clouds.py",
                              "tests/test_deploy.py"],
    "components/guardrails.py": ["tests/test_guardrails.py"],
    "components/clusters/eks.py": ["tests/test_eks.py", "tests/test_deploy.py"],
    "components/addons/kueue.py": ["tests/test_addons.py", "tests/test_bursting.py", "tests/test_clouds.py"],
    "components/bursting.py": ["tests/test_bursting.py"],
    "policies/rules/kubernetes.py": ["tests/test_policies.py"],
    "policies/rules/aws.py": ["tests/test_policies.py"],
    "stacks/config.py": ["tests/test_config.py", "tests/test_corpus.py", "tests/test_program.py"],
}
# Calls whose string arguments are messages, not behaviour.
MESSAGE_CALLS = {"report", "ValueError", "TypeError", "ConfigError", "GpuPoolError", "print", "warn", "PackError"}
COMPARE_FLIPS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                 ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
MAX_LITERAL = 12  # longer literals (tables) get no element-drop mutants


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    change: str
    node: int
    """Index of the node in `ast.walk` order."""
    variant: int = 0


@dataclass
class Result:
    mutant: Mutant
    status: str  # killed | survived | timeout | error
    seconds: float


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Docstrings, f-strings, annotations and messages."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.JoinedStr | ast.Raise):
            return True
        if isinstance(parent, ast.Expr) and isinstance(child, ast.Constant) and isinstance(child.value, str):
            return True  # a docstring or a bare string
        if isinstance(parent, ast.AnnAssign) and child is parent.annotation:
            return True
        if isinstance(parent, ast.arg | ast.FunctionDef) and child in (getattr(parent, "annotation", None),
                                                                      getattr(parent, "returns", None)):
            return True
        if isinstance(parent, ast.Call):
            func = parent.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in MESSAGE_CALLS and child is not func:
                return True
        child, parent = parent, parents.get(parent)
    return False


def mutants(path: str) -> list[Mutant]:
    tree = ast.parse((REPO / path).read_text())
    parents = _parents(tree)
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if _skipped(node, parents):
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in COMPARE_FLIPS:
                    out.append(Mutant(path, line, f"{type(op).__name__} -> {COMPARE_FLIPS[type(op)].__name__}", i, k))
        elif isinstance(node, ast.BoolOp):
            out.append(Mutant(path, line, f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}", i))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append(Mutant(path, line, "drop `not`", i))
        elif isinstance(node, ast.If):
            out.append(Mutant(path, line, "negate `if` condition", i))
        elif isinstance(node, ast.Constant) and not (isinstance(parents.get(node), ast.Dict)
                                                     and node in parents[node].keys):  # keys: dropped instead
            value = node.value
            if isinstance(value, bool):
                out.append(Mutant(path, line, f"{value} -> {not value}", i))
            elif isinstance(value, int):
                out.append(Mutant(path, line, f"{value} -> {value + 1}", i))
            elif isinstance(value, str):
                out.append(Mutant(path, line, f"{value[:30]!r} -> changed", i))
        elif isinstance(node, ast.Dict) and 0 < len(node.keys) <= MAX_LITERAL:
            for k, key in enumerate(node.keys):
                label = ast.unparse(key)[:40] if key is not None else "**"
                out.append(Mutant(path, line, f"drop dict entry {label}", i, k))
        elif isinstance(node, ast.List | ast.Tuple | ast.Set) and 0 < len(node.elts) <= MAX_LITERAL \
                and not isinstance(node.ctx if hasattr(node, "ctx") else None, ast.Store):
            for k, elt in enumerate(node.elts):
                out.append(Mutant(path, line, f"drop element {ast.unparse(elt)[:40]}", i, k))
    return out


def mutate(source: str, mutant: Mutant) -> str:
    tree = ast.parse(source)
    node = next(n for j, n in enumerate(ast.walk(tree)) if j == mutant.node)
    k = mutant.variant
    if isinstance(node, ast.Compare):
        node.ops[k] = COMPARE_FLIPS[type(node.ops[k])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.UnaryOp):
        _replace(tree, node, node.operand)
    elif isinstance(node, ast.If):
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif isinstance(node, ast.Constant):
        value = node.value
        node.value = (not value if isinstance(value, bool) else value + 1 if isinstance(value, int)
                      else (value + "_mutant" if value else "mutant"))
    elif isinstance(node, ast.Dict):
        del node.keys[k], node.values[k]
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        del node.elts[k]
        if isinstance(node, ast.Set) and not node.elts:
            _replace(tree, node, ast.Call(func=ast.Name("set", ast.Load()), args=[], keywords=[]))
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", "upstream", "*.pyc")
    shutil.copytree(REPO, dest, ignore=ignore, dirs_exist_ok=True)


def run(mutant: Mutant, workdir: Path, tests: list[str], timeout: int) -> Result:
    target = workdir / mutant.path
    original = (REPO / mutant.path).read_text()
    start = time.monotonic()
    try:
        target.write_text(mutate(original, mutant))
    except Exception:  # noqa: BLE001 - a mutant that does not unparse is not a mutant
        return Result(mutant, "error", 0.0)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=workdir, env=env, capture_output=True, timeout=timeout)
        status = "survived" if proc.returncode == 0 else "killed"
    except subprocess.TimeoutExpired:
        status = "timeout"  # counted as killed: the change made the tests hang
    finally:
        target.write_text(original)
    return Result(mutant, status, time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="module paths, relative to the repository")
    parser.add_argument("--tests", nargs="+", help="test files to run (default: TESTS for each module)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    parser.add_argument("--limit", type=int, help="only the first N mutants of each module (a quick look)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args(argv)

    plan: list[tuple[Mutant, list[str]]] = []
    for module in args.modules:
        tests = args.tests or TESTS.get(module)
        if not tests:
            parser.error(f"no tests known for {module}: pass --tests")
        found = mutants(module)[: args.limit] if args.limit else mutants(module)
        plan += [(m, tests) for m in found]
    if args.list:
        for m, _ in plan:
            print(f"{m.path}:{m.line}: {m.change}")
        print(f"{len(plan)} mutants")
        return 0

    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        workdirs = [Path(tmp) / f"w{i}" for i in range(args.jobs)]
        for w in workdirs:
            _copy_tree(w)
        # The unmutated tests must pass in the copy, or every mutant would look killed.
        for tests in {tuple(t) for _, t in plan}:
            base = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                  cwd=workdirs[0], capture_output=True, text=True)
            if base.returncode != 0:
                print(f"the tests fail without any mutant ({' '.join(tests)}):\n{base.stdout[-2000:]}")
                return 2
        free = list(workdirs)

        def one(item: tuple[Mutant, list[str]]) -> Result:
            workdir = free.pop()
            try:
                result = run(item[0], workdir, item[1], args.timeout)
            finally:
                free.append(workdir)
            print(f"{result.status:8} {result.seconds:6.1f}s {item[0].path}:{item[0].line}: {item[0].change}",
                  flush=True)
            return result

        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, plan))
    return report(results, args.json)


def report(results: list[Result], json_path: Path | None = None) -> int:
    print()
    by_module: dict[str, list[Result]] = {}
    for r in results:
        by_module.setdefault(r.mutant.path, []).append(r)
    for module, rs in by_module.items():
        counted = [r for r in rs if r.status != "error"]
        killed = sum(r.status in ("killed", "timeout") for r in counted)
        score = 100 * killed / len(counted) if counted else 100.0
        print(f"{module}: {killed}/{len(counted)} killed, {score:.0f}%")
        for r in counted:
            if r.status == "survived":
                print(f"  survived {r.mutant.path}:{r.mutant.line}: {r.mutant.change}")
    if json_path:
        json_path.write_text(json.dumps([{**asdict(r.mutant), "status": r.status, "seconds": round(r.seconds, 1)}
                                         for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
