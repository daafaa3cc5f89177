"""The mutation driver finds the changes that matter and leaves messages and docs alone."""

from __future__ import annotations

import ast

from tools.mutation import mutants, mutate

SOURCE = '''"""Module docstring."""
PORTS = [53, 443]


def allowed(name: str, port: int) -> bool:
    """Docstring."""
    if name in ("kube-system",) and not port:
        raise ValueError(f"bad {name}")
    return {"udp": True, "tcp": False}.get(name, port >= 1024)
'''


def test_mutants_cover_operators_literals_and_conditions_but_not_messages(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    changes = {m.change for m in mutants(str(path))}
    assert {"In -> NotIn", "GtE -> Gt", "And -> Or", "drop `not`", "negate `if` condition",
            "drop element 53", "drop element 443", "drop element 'kube-system'", "drop dict entry 'udp'",
            "True -> False", "1024 -> 1025"} <= changes
    # Docstrings and the exception's message are not behaviour.
    assert not [c for c in changes if "docstring" in c.lower() or "bad" in c]


def test_a_policys_description_and_remediation_are_documentation_not_behaviour(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('P = Policy(name="p", enforcement_level="mandatory", description="Text.", '
                    'remediation_steps="Do this.")\n')
    changes = {m.change for m in mutants(str(path))}
    assert changes == {"'p' -> changed", "'mandatory' -> changed"}


def test_each_mutant_changes_exactly_one_thing(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    original = ast.unparse(ast.parse(SOURCE))
    for m in mutants(str(path)):
        mutated = mutate(SOURCE, m)
        assert mutated != original, m  # every mutant changes the program
        compile(mutated, "m.py", "exec")  # ... and is valid Python
    flip = next(m for m in mutants(str(path)) if m.change == "GtE -> Gt")
    assert "port > 1024" in mutate(SOURCE, flip)


def test_the_budget_takes_the_cheapest_tests_and_pays_each_fixture_once():
    from tools.mutation import CoverageMap, within

    cmap = CoverageMap(cost={}, lines={}, own={"a": 1.0, "b": 1.0, "c": 1.0, "d": 50.0},
                       fixtures={"a": {"plan": 30.0}, "b": {"plan": 30.0}, "c": {}, "d": {}})
    chosen, cost = within(["c", "a", "b", "d"], cmap, budget=40.0)
    assert chosen == ["c", "a", "b"] and cost == 33.0  # the plan fixture is paid by `a` only
    assert within(["c", "a", "b", "d"], cmap, budget=None)[0] == ["c", "a", "b", "d"]
    assert within(["d", "c"], cmap, budget=1.0)[0] == ["d"]  # the cheapest always runs


def test_import_time_statements_name_what_they_define():
    from tools.mutation import _defined, _parents, statement

    tree = ast.parse("LIMIT = 3\n\nclass Spec:\n    cpu: str = '16'\n\ndef f(x=LIMIT):\n    return x + 1\n")
    parents = _parents(tree)
    by_line = {n.lineno: statement(n, parents) for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert _defined(by_line[1], parents) == {"LIMIT"}
    assert _defined(by_line[4], parents) == {"Spec", "cpu"}  # a model field: its class and attribute
    assert _defined(by_line[7], parents) is None  # a function body runs when called: coverage sees it


def _references(sources: dict[str, str]):
    """A References over in-memory modules (path -> source); tests fill `uses` themselves."""
    from tools.mutation import References, _parents

    refs = References.__new__(References)
    refs.trees = {path: (tree, _parents(tree)) for path, tree in ((p, ast.parse(src)) for p, src in sources.items())}
    refs.uses = {}
    return refs


def test_a_helper_that_only_an_import_time_table_calls_selects_the_tables_users():
    from tools.mutation import CoverageMap, Mutant, select

    lib = "def rule(group):\n    return {'apiGroups': [group]}\n\n\nRULES = [rule('batch')]\n"
    user = "from lib import RULES\n\n\ndef allowed():\n    return RULES\n"
    refs = _references({"lib.py": lib, "user.py": user})
    refs.uses = {"rule": [("lib.py", refs.trees["lib.py"][0].body[1])],
                 "RULES": [("user.py", refs.trees["user.py"][0].body[1].body[0])]}
    # Coverage saw the helper's body only at import (no test), and `allowed` run by one test.
    cmap = CoverageMap(cost={"t::reads_rules": 1.0, "t::other": 1.0}, fixtures={}, own={},
                       lines={("user.py", 5): {"t::reads_rules"}})
    body = next(j for j, n in enumerate(ast.walk(refs.trees["lib.py"][0]))
                if isinstance(n, ast.Constant) and n.value == "apiGroups")
    assert select(Mutant("lib.py", 2, "drop dict entry 'apiGroups'", body), cmap, refs) == ["t::reads_rules"]


def test_a_helper_run_by_a_test_also_selects_the_users_of_the_table_it_built_at_import():
    from tools.mutation import CoverageMap, Mutant, select

    lib = "def rules(kinds):\n    return [k for k in kinds]\n\n\nRULES = rules(['batch'])\n"
    user = "from lib import RULES\n\n\ndef read():\n    return RULES\n"
    refs = _references({"lib.py": lib, "user.py": user})
    refs.uses = {"rules": [("lib.py", refs.trees["lib.py"][0].body[1])],
                 "RULES": [("user.py", refs.trees["user.py"][0].body[1].body[0])]}
    # One test calls the helper itself; another only reads the table the helper built at import.
    cmap = CoverageMap(cost={"t::calls_rules": 1.0, "t::reads_table": 2.0}, fixtures={}, own={},
                       lines={("lib.py", 2): {"t::calls_rules"}, ("user.py", 5): {"t::reads_table"}})
    body = next(j for j, n in enumerate(ast.walk(refs.trees["lib.py"][0])) if isinstance(n, ast.ListComp))
    assert select(Mutant("lib.py", 2, "drop element", body), cmap, refs) == ["t::calls_rules", "t::reads_table"]


def test_a_table_read_by_a_helper_that_builds_another_table_at_import_selects_that_tables_readers():
    from tools.mutation import CoverageMap, Mutant, select

    lib = ("KINDS = {'batch': 'jobs'}\n\n\ndef rules(names):\n    return [KINDS[n] for n in names]\n\n\n"
           "RULES = rules(['batch'])\n")
    user = "from lib import RULES\n\n\ndef read():\n    return RULES\n"
    refs = _references({"lib.py": lib, "user.py": user})
    lib_tree, user_tree = refs.trees["lib.py"][0], refs.trees["user.py"][0]
    refs.uses = {"KINDS": [("lib.py", lib_tree.body[1].body[0])], "rules": [("lib.py", lib_tree.body[2])],
                 "RULES": [("user.py", user_tree.body[1].body[0])]}
    cmap = CoverageMap(cost={"t::calls_rules": 1.0, "t::reads_table": 2.0}, fixtures={}, own={},
                       lines={("lib.py", 5): {"t::calls_rules"}, ("user.py", 5): {"t::reads_table"}})
    jobs = next(j for j, n in enumerate(ast.walk(lib_tree)) if isinstance(n, ast.Constant) and n.value == "jobs")
    assert select(Mutant("lib.py", 1, "'jobs' -> changed", jobs), cmap, refs) == ["t::calls_rules", "t::reads_table"]


def test_the_modules_own_tests_come_first_even_when_others_are_cheaper():
    from tools.mutation import CoverageMap, Mutant, select

    refs = _references({"lib.py": "def f(x):\n    return x + 1\n"})
    tree = refs.trees["lib.py"][0]
    cmap = CoverageMap(cost={"tests/test_lib.py::pins_f": 5.0, "tests/test_other.py::imports_f": 0.1}, fixtures={},
                       own={}, lines={("lib.py", 2): {"tests/test_lib.py::pins_f", "tests/test_other.py::imports_f"}})
    plus = next(j for j, n in enumerate(ast.walk(tree)) if isinstance(n, ast.BinOp))
    assert select(Mutant("lib.py", 2, "Add -> Sub", plus), cmap, refs) == ["tests/test_lib.py::pins_f",
                                                                          "tests/test_other.py::imports_f"]


def test_an_equivalent_entry_matches_a_dict_entry_below_the_dicts_first_line():
    from tools.mutation import equivalent

    (m,) = [m for m in mutants("components/bursting.py") if m.change == "drop dict entry 'queueingStrategy'"]
    assert "CRD's default" in (equivalent(m) or "")
    (other,) = [m for m in mutants("components/bursting.py") if m.change == "drop dict entry 'preemption'"]
    assert equivalent(other) is None
