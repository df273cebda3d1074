"""`redraft strategies` and `redraft verifiers`: every registered method, with its options and defaults."""

import dataclasses
import subprocess
import sys

from redraft.catalog import strategy_entries, summary_of, verifier_entries
from redraft.strategies import STRATEGIES, make_strategy
from redraft.strategies.base import Strategy, register_strategy


def by_name(entries):
    return {e.name: e for e in entries}


def test_every_strategy_is_listed_with_the_defaults_it_is_built_with():
    entries = by_name(strategy_entries())
    assert set(entries) == set(STRATEGIES)
    for name, entry in entries.items():
        built = dataclasses.asdict(make_strategy(name).options)
        assert {o.name: o.default for o in entry.options} == built, name
        assert entry.summary, name


def test_a_users_strategy_is_listed_with_its_docstring():
    @dataclasses.dataclass
    class EchoOptions:
        times: int = 2

    @register_strategy
    class Echo(Strategy):
        """Echo: says the question back, twice."""

        name = "echo_test_only"
        Options = EchoOptions

        async def solve(self, ctx):
            raise NotImplementedError

    try:
        entry = by_name(strategy_entries())["echo_test_only"]
        assert entry.summary == "Echo: says the question back, twice."
        assert [(o.name, o.kind, o.default) for o in entry.options] == [("times", "int", 2)]
    finally:
        del STRATEGIES["echo_test_only"]


def test_verifier_options_come_from_their_constructors():
    entries = by_name(verifier_entries())
    rollout = {o.name: o for o in entries["rollout"].options}
    assert rollout["k"].default == 4 and rollout["k"].kind == "int" and not rollout["k"].required
    [members] = entries["weighted"].options
    assert members.required and members.kind == "spec"
    assert "weighted:judge=" in entries["weighted"].summary  # its own spec grammar, shown in the summary


def test_long_summaries_are_cut_at_a_word():
    class Wordy:
        pass

    Wordy.__doc__ = "word " * 60

    summary = summary_of(Wordy)
    assert summary.endswith(" …") and len(summary) <= 142 and "wor …" not in summary


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "redraft.cli", *args], capture_output=True, text=True,
                          timeout=60, env={"COLUMNS": "200", "PATH": ""})


def test_the_commands_print_the_tables_and_refuse_unknown_names():
    listing = run_cli("strategies")
    assert listing.returncode == 0 and "magicore" in listing.stdout and "self_debug" in listing.stdout
    detail = run_cli("strategies", "pgs")
    assert detail.returncode == 0
    assert any("max_examples" in line and "50" in line for line in detail.stdout.splitlines())
    verifier = run_cli("verifiers", "step_judge")
    assert verifier.returncode == 0 and "split" in verifier.stdout and "'auto'" in verifier.stdout
    unknown = run_cli("verifiers", "jduge")
    assert unknown.returncode == 2 and "unknown verifier 'jduge'" in unknown.stderr
