"""Tests for minirl/algos/__init__.py: the registry and the table in its docstring agree."""
import minirl.algos as algos
from minirl.algos import ALGOS, Agent


def test_every_registered_agent_is_in_the_docstring_table_and_imports():
    doc = algos.__doc__
    for name in ALGOS:
        assert f"``{name}``" in doc, name          # the table names every CLI name
        cls = ALGOS[name]
        assert issubclass(cls, Agent) and cls.name == name
