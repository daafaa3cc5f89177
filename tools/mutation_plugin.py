"""pytest plugin used by tools.mutation (loaded with `-p tools.mutation_plugin`).

Two modes, chosen by environment variables:

- MUTATION_MAP_OUT=FILE (with MUTATION_MAP_INCLUDE=glob:glob...): measure, per test, which
  lines of the included files it runs. Lines a fixture runs are recorded under the fixture and
  count for every test that uses it, so a line only a session fixture (a planned stack) runs
  still selects every test that reads that plan. Lines run while modules import are recorded
  under the empty context.
- MUTATION_SELECT=FILE (a JSON list of node ids): run only those tests, in that order (cheapest
  first, so `-x` stops a killed mutant early).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

import pytest

MAP_OUT = os.environ.get("MUTATION_MAP_OUT")
SELECT = os.environ.get("MUTATION_SELECT")

_cov = None
if MAP_OUT:
    import coverage

    # Started when pytest loads the plugin: before conftest imports the program.
    _cov = coverage.Coverage(data_file=None, include=os.environ.get("MUTATION_MAP_INCLUDE", "").split(":"),
                             config_file=False)
    _cov.start()

_stack: list[str] = []
_fixture_seconds: dict[str, float] = defaultdict(float)
_tests: dict[str, dict] = {}


def _fixture_key(fixturedef) -> str:
    return f"fixture|{fixturedef.baseid}|{fixturedef.argname}"


def _switch(context: str) -> None:
    if _cov is not None:
        _cov.switch_context(context)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    key = _fixture_key(fixturedef)
    _stack.append(key)
    _switch(key)
    start = time.perf_counter()
    try:
        yield
    finally:
        _fixture_seconds[key] += time.perf_counter() - start
        _stack.pop()
        _switch(_stack[-1] if _stack else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    context = f"test|{item.nodeid}"
    _stack.append(context)
    _switch(context)
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        _stack.pop()
        _switch(_stack[-1] if _stack else "")
        keys = []
        for name in item.fixturenames:
            keys += [_fixture_key(d) for d in item._fixtureinfo.name2fixturedefs.get(name, ())]
        _tests[item.nodeid] = {"seconds": round(seconds, 3), "fixtures": sorted(set(keys))}


def pytest_collection_modifyitems(config, items):
    if not SELECT:
        return
    with open(SELECT) as f:
        order = {nodeid: i for i, nodeid in enumerate(json.load(f))}
    chosen = [item for item in items if item.nodeid in order]
    items[:] = sorted(chosen, key=lambda item: order[item.nodeid])


def pytest_sessionfinish(session):
    if _cov is None:
        return
    _cov.stop()
    data = _cov.get_data()
    root = str(session.config.rootpath)
    lines: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for path in data.measured_files():
        for lineno, contexts in data.contexts_by_lineno(path).items():
            for context in contexts:
                lines[context][os.path.relpath(path, root)].append(lineno)
    with open(MAP_OUT, "w") as f:
        json.dump({"tests": _tests, "fixtures": {k: round(v, 3) for k, v in _fixture_seconds.items()},
                   "lines": lines}, f)
