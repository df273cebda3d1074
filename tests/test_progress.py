"""A run's progress as a log shows it: a line at most every `every` seconds and one at the end."""

import io

from rich.console import Console

from redraft.accounting import Cost
from redraft.progress import RunProgress
from redraft.store import ProblemRecord, Store


def record(position: int, correct: bool, tokens: int) -> ProblemRecord:
    cost = Cost()
    cost.add("solver", 1, 10, tokens, 1.0, False)
    return ProblemRecord("run", str(position), position, "1", correct, "", "", {}, [], cost, 1.0, None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def log_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_a_log_gets_a_line_a_minute_not_one_per_problem_and_a_last_one():
    console, out = log_console()
    clock = Clock()
    with RunProgress(console, "self_refine", 10, done=2, correct=1, every=60, clock=clock) as on_done:
        for position in range(2, 6):  # four problems within the first minute: no line yet
            clock.now += 10
            on_done(record(position, position % 2 == 0, 100))
        assert out.getvalue() == ""
        clock.now = 80  # the fifth, past the minute: one line
        on_done(record(6, True, 300))
        lines = out.getvalue().splitlines()
        assert lines == ["  self_refine: 7/10 done, acc 57.1%, 140 tok/problem, 80 s elapsed, about 48 s to go"]
        clock.now = 90
        on_done(record(7, False, 100))
    lines = out.getvalue().splitlines()  # leaving reports the problem no line has shown yet
    assert len(lines) == 2 and lines[1].startswith("  self_refine: 8/10 done, acc 50.0%")


def test_the_last_problem_is_reported_at_once_and_quiet_prints_nothing():
    console, out = log_console()
    clock = Clock()
    with RunProgress(console, "cot", 2, every=3600, clock=clock) as on_done:
        on_done(record(0, True, 5))
        on_done(record(1, True, 5))
        assert out.getvalue().splitlines() == ["  cot: 2/2 done, acc 100.0%, 5 tok/problem, 0 s elapsed"]
    assert len(out.getvalue().splitlines()) == 1  # nothing new to say at the end
    console, out = log_console()
    with RunProgress(console, "cot", 1, quiet=True, clock=clock) as on_done:
        on_done(record(0, True, 5))
    assert out.getvalue() == ""


def test_a_resumed_run_starts_from_what_the_store_has(tmp_path):
    store = Store(tmp_path / "runs.db")
    run = store.create_run(task="arithmetic", task_options={}, strategy="cot", strategy_options={}, model="m",
                           model_identity="m", settings={}, problem_ids=["0", "1", "2"], uses_oracle=False)
    for position, correct in enumerate([True, False]):
        store.save_result(ProblemRecord(run.id, str(position), position, "1", correct, "", "", {}, [], Cost(),
                                        0.0, None))
    progress = RunProgress.for_run(log_console()[0], store, run, "cot")
    assert (progress.total, progress.done, progress.correct, progress.accuracy) == (3, 2, 1, "50.0%")


def test_a_terminal_gets_the_live_bar_instead_of_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with RunProgress(console, "cot", 2, every=0) as on_done:
        on_done(record(0, True, 5))
        on_done(record(1, False, 5))
    assert "cot" in out.getvalue() and "2/2" in out.getvalue() and "done," not in out.getvalue()
