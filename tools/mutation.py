"""Mutation testing: change one small thing in a module, run the tests that cover it, and see
whether any fails. A mutant that survives is behaviour no test pins.

    python -m tools.mutation components/tenancy.py [more modules] [--tests tests/test_x.py ...]
                             [--jobs 2] [--budget 120] [--limit N] [--list] [--json report.json]
                             [--resume report.json]

Mutations, by AST: comparison operators flipped, `and`/`or` swapped, `not` dropped, booleans
flipped, numbers moved by one, strings changed, one element dropped from a list/tuple/set
literal, one entry dropped from a dict literal, an `if` condition negated. Docstrings,
f-strings, messages of exceptions and reports, and type annotations are left alone: changing
them is not a change of behaviour.

How it stays fast enough to run over the whole suite:

1. A coverage map: each test file runs once under coverage (tools/mutation_plugin.py), which
   records the lines every test runs, counting a fixture's lines for every test that uses
   the fixture. Maps are cached per test file in .mutation-cache/, keyed by the test file and
   the program's sources, so only what changed is measured again.
2. Each mutant runs only the tests that run its line, cheapest first, with `pytest -x`, in
   its own copy of the working tree (one per job; the real files are never touched), so
   subprocesses the tests start see the mutant too. A line that only runs when its module
   is imported (a table, a default, a field of a model) selects the tests that run any line
   using the names it defines, followed through other import-time definitions.
3. A mutant no test runs survives without a run.

Mutants listed in tools/mutation_equivalents.py are reported apart, with the reason, and left
out of the score. It prints the score per module and every survivor as file:line: change.

Slow (tens of minutes per module): run it before a release, not in CI.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Calls whose string arguments are messages, not behaviour.
MESSAGE_CALLS = {"report", "ValueError", "TypeError", "ConfigError", "GpuPoolError", "print", "warn", "PackError"}
# Keyword arguments that are documentation (a policy's description and remediation, a field's help).
MESSAGE_KEYWORDS = {"description", "remediation_steps"}
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
    status: str  # killed | survived | timeout | lost | uncovered | equivalent | error
    seconds: float
    why: str = ""


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Docstrings, f-strings, annotations, messages and documentation keywords."""
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
        if isinstance(parent, ast.keyword) and parent.arg in MESSAGE_KEYWORDS:
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


CACHE = REPO / ".mutation-cache"
SOURCE_DIRS = ("components", "stacks", "policies", "tests")
PLUGIN = "tools.mutation_plugin"
HEADER = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


# --- the coverage map ------------------------------------------------------------------------

@dataclass
class CoverageMap:
    cost: dict[str, float]
    """Node id -> estimated seconds (its own run plus the fixtures it uses)."""
    fixtures: dict[str, dict[str, float]]
    """Node id -> the fixtures it uses, with their seconds (paid once per run)."""
    own: dict[str, float]
    """Node id -> seconds of the test itself."""
    lines: dict[tuple[str, int], set[str]]
    """(file, line) -> node ids of the tests (or of fixtures they use) that run it."""


def _pytest(args: list[str], cwd: Path, env: dict[str, str], timeout: float | None = None):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", PLUGIN, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def coverage_map(test_files: list[str], targets: list[str], jobs: int) -> CoverageMap:
    """Per test file, cached under the hash of the file and conftest; a cached map is measured
    again when a module to mutate has changed since (its lines would no longer match)."""
    CACHE.mkdir(exist_ok=True)
    conftest = _sha(REPO / "tests" / "conftest.py")
    wanted = {t: CACHE / f"{Path(t).stem}-{_sha(REPO / t)}-{conftest}.json" for t in test_files}
    now = {t: _sha(REPO / t) for t in targets}

    def fresh(path: Path) -> bool:
        if not path.exists():
            return False
        recorded = json.loads(path.read_text()).get("sources", {})
        return all(recorded.get(t, sha) == sha for t, sha in now.items())

    missing = [t for t, path in wanted.items() if not fresh(path)]
    include = ":".join(f"{REPO}/{d}/*" for d in SOURCE_DIRS)

    def measure(test_file: str) -> None:
        start = time.monotonic()
        out = Path(str(wanted[test_file]) + ".tmp")
        before = {str(p.relative_to(REPO)): _sha(p) for d in SOURCE_DIRS[:-1] for p in (REPO / d).rglob("*.py")}
        proc = _pytest([test_file], REPO, {"MUTATION_MAP_OUT": str(out), "MUTATION_MAP_INCLUDE": include})
        if proc.returncode not in (0, 5):
            raise SystemExit(f"{test_file} fails without any mutant; fix it first:\n{proc.stdout[-3000:]}")
        data = json.loads(out.read_text())
        data["sources"] = before
        wanted[test_file].write_text(json.dumps(data))
        out.unlink()
        print(f"coverage map: {test_file} in {time.monotonic() - start:.0f}s", flush=True)

    if missing:
        print(f"coverage map: measuring {len(missing)} test file(s) with {jobs} job(s)", flush=True)
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(measure, missing))
    cmap = CoverageMap({}, {}, {}, {})
    for path in wanted.values():
        data = json.loads(path.read_text())
        users: dict[str, list[str]] = {}
        for nodeid, test in data["tests"].items():
            cmap.fixtures[nodeid] = {f: data["fixtures"].get(f, 0.0) for f in test["fixtures"]}
            cmap.own[nodeid] = test["seconds"]
            cmap.cost[nodeid] = test["seconds"] + sum(cmap.fixtures[nodeid].values())
            for f in test["fixtures"]:
                users.setdefault(f, []).append(nodeid)
        for context, files in data["lines"].items():
            nodeids = ([context[5:]] if context.startswith("test|")
                       else users.get(context, []) if context.startswith("fixture|") else [])
            for file, lines in files.items():
                for line in lines:
                    cmap.lines.setdefault((file, line), set()).update(nodeids)
    return cmap


# --- which tests a mutant needs ---------------------------------------------------------------

class References:
    """Where each name is used in the program and its tests, for lines that only run at import."""

    def __init__(self) -> None:
        self.uses: dict[str, list[tuple[str, ast.stmt]]] = {}
        self.trees: dict[str, tuple[ast.Module, dict[ast.AST, ast.AST]]] = {}
        for d in SOURCE_DIRS:
            for p in sorted((REPO / d).rglob("*.py")):
                rel = str(p.relative_to(REPO))
                tree, parents = self.tree(rel)
                for node in ast.walk(tree):
                    name = (node.id if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                            else node.attr if isinstance(node, ast.Attribute)
                            else node.name if isinstance(node, ast.alias) else None)
                    if name:
                        self.uses.setdefault(name.split(".")[-1], []).append((rel, statement(node, parents)))

    def tree(self, path: str) -> tuple[ast.Module, dict[ast.AST, ast.AST]]:
        if path not in self.trees:
            tree = ast.parse((REPO / path).read_text())
            self.trees[path] = (tree, _parents(tree))
        return self.trees[path]


def statement(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.stmt:
    """The innermost statement that holds `node` (for compound statements: their header)."""
    while not isinstance(node, ast.stmt):
        node = parents[node]
    return node


def _lines(stmt: ast.stmt) -> range:
    if isinstance(stmt, HEADER):
        body = getattr(stmt, "body", None)
        end = body[0].lineno - 1 if body else stmt.end_lineno
        return range(stmt.lineno, max(end, stmt.lineno) + 1)
    return range(stmt.lineno, stmt.end_lineno + 1)


def _runners(path: str, stmt: ast.stmt, cmap: CoverageMap) -> set[str]:
    found: set[str] = set()
    for line in _lines(stmt):
        found |= cmap.lines.get((path, line), set())
    return found


def _defined(stmt: ast.stmt, parents: dict[ast.AST, ast.AST]) -> set[str] | None:
    """Names an import-time statement defines (None: it is not an import-time statement)."""
    chain = [stmt]
    while not isinstance(parents.get(chain[-1]), ast.Module):
        parent = parents.get(chain[-1])
        if parent is None:
            return None
        chain.append(parent)
    if any(isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) for s in chain[1:]):
        return None  # inside a function body: runs when called, so coverage sees it
    names: set[str] = set()
    for s in chain:
        if isinstance(s, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(s.name)
        for target in (getattr(s, "targets", None) or [getattr(s, "target", None)]):
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} if target is not None else set()
    return names


def _function(stmt: ast.stmt, parents: dict[ast.AST, ast.AST]) -> set[str]:
    """The name of the module-level function whose body holds `stmt`, if any."""
    top = stmt
    while not isinstance(parents.get(top), ast.Module):
        top = parents[top]
    return {top.name} if top is not stmt and isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else set()


def select(m: Mutant, cmap: CoverageMap, refs: References) -> list[str]:
    tree, parents = refs.tree(m.path)
    node = next(n for j, n in enumerate(ast.walk(tree)) if j == m.node)
    stmt = statement(node, parents)
    tests = _runners(m.path, stmt, cmap)
    names = _defined(stmt, parents)
    called: set[str] = set()
    if names is None:  # a function body: coverage sees its calls in tests, not those at import (a table it builds)
        called = _function(stmt, parents)
        names = set(called) or None
    if names:  # runs at import: follow the names it defines to the code that uses them
        seen: set[str] = set()
        while names - seen:
            name = (names - seen).pop()
            seen.add(name)
            for path, use in refs.uses.get(name, []):
                if name in called and _defined(use, refs.tree(path)[1]) is None:
                    continue  # a call at run time: coverage already counted the tests that make it
                use_parents = refs.tree(path)[1]
                further = _defined(use, use_parents)
                if further and path.startswith("tests/test_"):  # a test's decorator, e.g. parametrize
                    tests |= {t for t in cmap.cost if t.startswith(f"{path}::")
                              and t.split("::")[-1].split("[")[0] in further}
                elif further:
                    names |= further
                else:
                    tests |= _runners(path, use, cmap)
                    # ... and if a table built at import calls that function, whoever reads the table.
                    fresh = _function(use, use_parents) - called
                    called |= fresh
                    names |= fresh
    # The module's own test file first (tests/test_eks.py for eks.py): its tests are written to pin it, while
    # a cheap test elsewhere that merely imports a name would use up the budget first.
    own = f"tests/test_{Path(m.path).stem}.py::"
    return sorted(tests, key=lambda t: (not t.startswith(own), cmap.cost.get(t, 0.0), t))


def within(tests: list[str], cmap: CoverageMap, budget: float | None) -> tuple[list[str], float]:
    """The cheapest tests first, as many as fit the budget (each fixture paid once), and their cost."""
    paid: set[str] = set()
    total, chosen = 0.0, []
    for t in tests:
        extra = cmap.own.get(t, 1.0) + sum(s for f, s in cmap.fixtures.get(t, {}).items() if f not in paid)
        if budget is not None and chosen and total + extra > budget:
            break
        chosen.append(t)
        paid |= set(cmap.fixtures.get(t, {}))
        total += extra
    return chosen, total


# --- equivalent mutants ------------------------------------------------------------------------

def equivalent(m: Mutant) -> str | None:
    from tools.mutation_equivalents import EQUIVALENT

    source = (REPO / m.path).read_text()
    node = next(n for j, n in enumerate(ast.walk(ast.parse(source))) if j == m.node)
    # A fragment of any line of the mutated node: a dict's entries sit below its first line.
    lines = source.splitlines()[m.line - 1:max(m.line, getattr(node, "end_lineno", m.line) or m.line)]
    for fragment, change, why in EQUIVALENT.get(m.path, ()):
        if change == m.change and any(fragment in line for line in lines):
            return why
    return None


# --- running ------------------------------------------------------------------------------------

def _copy_tree(dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in {".venv", ".git", "__pycache__", ".pytest_cache", ".mutation-cache",
                                          ".hypothesis", ".ruff_cache"} or n.endswith(".pyc")}
        return skip | ({"upstream"} & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, dest, ignore=ignore, dirs_exist_ok=True)


def run(mutant: Mutant, workdir: Path, tests: list[str], timeout: float) -> Result:
    target = workdir / mutant.path
    original = (REPO / mutant.path).read_text()
    start = time.monotonic()
    try:
        target.write_text(mutate(original, mutant))
    except Exception:  # noqa: BLE001 - a mutant that does not unparse is not a mutant
        return Result(mutant, "error", 0.0)
    selection = workdir / ".mutation-select.json"
    selection.write_text(json.dumps(tests))
    files = list(dict.fromkeys(t.split("::")[0] for t in tests))
    try:
        proc = _pytest(["-x", *files], workdir, {"MUTATION_SELECT": str(selection)}, timeout)
        # 5: nothing collected, the mutant renamed the tests it was meant to meet
        status = {0: "survived", 5: "lost"}.get(proc.returncode, "killed")
    except subprocess.TimeoutExpired:
        status = "timeout"  # counted as killed: the change made the tests hang
    finally:
        target.write_text(original)
    return Result(mutant, status, time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="module paths, relative to the repository")
    parser.add_argument("--tests", nargs="+", help="test files that may kill (default: every tests/test_*.py)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N mutants of each module (a quick look)")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="estimated seconds of tests per mutant, cheapest first (0: every test that runs the line)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="write every result here (rewritten as results come in)")
    parser.add_argument("--resume", type=Path,
                        help="a --json report: keep its killed mutants (when the module has not changed), run the rest")
    parser.add_argument("--rescore", action="store_true",
                        help="with --resume: score that report against today's mutants and equivalents, run nothing")
    args = parser.parse_args(argv)
    if args.rescore and not args.resume:
        parser.error("--rescore needs --resume REPORT")

    found: list[Mutant] = []
    for module in args.modules:
        if not (REPO / module).is_file():
            parser.error(f"{module}: no such module (paths are relative to {REPO})")
        ms = mutants(module)
        found += ms[: args.limit] if args.limit else ms
    if args.list:
        for m in found:
            print(f"{m.path}:{m.line}: {m.change}")
        print(f"{len(found)} mutants")
        return 0

    if args.rescore:
        earlier = {(e["path"], e["node"], e["variant"], e["change"]): e for e in json.loads(args.resume.read_text())
                   if e.get("sha") == _sha(REPO / e["path"])}
        results = []
        for m in found:
            e = earlier.get((m.path, m.node, m.variant, m.change))
            why = None if e and e["status"] in ("killed", "timeout") else equivalent(m)
            # An entry since removed from the equivalents list counts as the survivor it is.
            status = "equivalent" if why else e["status"] if e and e["status"] != "equivalent" else "survived"
            results.append(Result(m, status, e["seconds"] if e else 0.0, why or ("" if e else "not in the report")))
        return report(results, args.json)
    test_files = args.tests or sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py")
                                      if p.name != "test_mutation_tool.py")
    cmap = coverage_map(test_files, args.modules, args.jobs)
    refs = References()
    results: list[Result] = []
    plan: list[tuple[Mutant, list[str]]] = []
    # New tests only add kills, so a kill stands as long as the mutated module is unchanged.
    kept = {(e["path"], e["node"], e["variant"], e["change"]): e for e in
            (json.loads(args.resume.read_text()) if args.resume and args.resume.exists() else [])
            if e["status"] in ("killed", "timeout") and e.get("sha") == _sha(REPO / e["path"])}
    reused = 0
    for m in found:
        before = kept.get((m.path, m.node, m.variant, m.change))
        if before:
            results.append(Result(m, before["status"], before["seconds"]))
            reused += 1
            continue
        why = equivalent(m)
        tests, _ = within(select(m, cmap, refs), cmap, args.budget or None)
        if why:
            results.append(Result(m, "equivalent", 0.0, why))
        elif not tests:
            results.append(Result(m, "uncovered", 0.0))
        else:
            plan.append((m, tests))
    print(f"{len(found)} mutants: {len(plan)} to run, {reused} killed before (--resume), "
          f"{sum(r.status == 'uncovered' for r in results)} run by no test, "
          f"{sum(r.status == 'equivalent' for r in results)} equivalent", flush=True)

    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        free = [Path(tmp) / f"w{i}" for i in range(args.jobs)]
        for w in free:
            _copy_tree(w)

        lock = threading.Lock()

        def one(item: tuple[Mutant, list[str]]) -> Result:
            m, tests = item
            workdir = free.pop()
            try:
                timeout = 120 + 4 * within(tests, cmap, None)[1]
                result = run(m, workdir, tests, timeout)
            finally:
                free.append(workdir)
            print(f"{result.status:8} {result.seconds:6.1f}s {m.path}:{m.line}: {m.change} ({len(tests)} tests)",
                  flush=True)
            with lock:
                results.append(result)
                if args.json:  # a run cut short still leaves what it found (for --resume)
                    write_json(results, args.json)
            return result

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, plan))
    return report(results, args.json)


def score(results: list[Result]) -> tuple[int, int]:
    """(killed, counted): equivalent mutants and mutants that do not unparse are not counted."""
    counted = [r for r in results if r.status not in ("error", "equivalent")]
    return sum(r.status in ("killed", "timeout") for r in counted), len(counted)


def report(results: list[Result], json_path: Path | None = None) -> int:
    print()
    by_module: dict[str, list[Result]] = {}
    for r in results:
        by_module.setdefault(r.mutant.path, []).append(r)
    for module, rs in by_module.items():
        killed, counted = score(rs)
        pct = 100 * killed / counted if counted else 100.0
        equivalents = [r for r in rs if r.status == "equivalent"]
        print(f"{module}: {killed}/{counted} killed, {pct:.1f}% ({len(equivalents)} equivalent, not counted)")
        for r in sorted(rs, key=lambda r: r.mutant.line):
            if r.status in ("survived", "uncovered", "lost"):
                note = {"uncovered": " (no test runs this line)", "lost": " (the selected tests disappeared)"}
                why = note.get(r.status, f" ({r.why})" if r.why else "")
                print(f"  survived {r.mutant.path}:{r.mutant.line}: {r.mutant.change}{why}")
        for r in sorted(equivalents, key=lambda r: r.mutant.line):
            print(f"  equivalent {r.mutant.path}:{r.mutant.line}: {r.mutant.change}: {r.why}")
    if json_path:
        write_json(results, json_path)
    return 0


def write_json(results: list[Result], path: Path) -> None:
    shas = {p: _sha(REPO / p) for p in {r.mutant.path for r in results}}
    path.write_text(json.dumps([{**asdict(r.mutant), "status": r.status, "seconds": round(r.seconds, 1),
                                 "why": r.why, "sha": shas[r.mutant.path]} for r in results], indent=1))


if __name__ == "__main__":
    sys.exit(main())
