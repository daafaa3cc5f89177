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
