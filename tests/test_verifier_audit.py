"""benchmarks/verifier_quality.py's first-error audit (written for the hand check, tallied from it, never
overwritten once filled in) and the probe's embedding cache (kept as it grows)."""

from __future__ import annotations

import pytest
from benchmark_scripts import gsm8k_task, load_benchmark_script

QUESTION = "Tom has 3 bags of 4 apples and eats 2. How many apples are left?"
RIGHT = "Step 1: 3 * 4 = 12 apples.\nStep 2: 12 - 2 = 10 apples.\nThe answer is 10."
SLIP = "Step 1: 3 * 4 = 14 apples.\nStep 2: 14 - 2 = 12 apples.\nThe answer is 12."
SETUP = "Step 1: He has 3 + 4 = 7 apples.\nStep 2: 7 - 2 = 5 apples.\nThe answer is 5."


@pytest.fixture()
def world(tmp_path):
    vq = load_benchmark_script("verifier_quality")
    task = gsm8k_task(tmp_path, [(QUESTION, "3*4=12, 12-2=10\n#### 10")])
    problem = task.problems()[0]
    samples = vq.ProblemSamples(problem=problem, texts=[RIGHT, SLIP, SETUP], calls=[], run_id="r")
    labels = {problem.id: [True, False, False]}
    # the step verifier flagged step 1 on the slip and step 2 on the wrong set-up (a late flag)
    row = {"problem_id": problem.id, "scores": [0.9, 0.1, 0.2], "steps": [[0.9, 0.9], [0.1, 0.8], [0.9, 0.2]],
           "first_error": [None, 0, 1]}
    return vq, task, problem, {problem.id: samples}, labels, [row]


def test_audit_lists_wrong_candidates_with_the_key_and_the_flags(world, tmp_path):
    vq, task, problem, items, labels, rows = world
    path = tmp_path / "audit.md"
    assert vq.audit(path, "step_judge", rows, items, labels, task, "auto") == []  # nothing checked yet
    text = path.read_text()
    assert "sample 0" not in text  # right candidates are not audited
    assert f"problem {problem.id}, sample 1: flagged step 1" in text
    assert f"problem {problem.id}, sample 2: flagged step 2" in text
    assert "Answer key: 10" in text
    assert "first false equation (automatic)" in text  # 3 * 4 = 14
    assert text.count(f"first real error at step: {vq.AUDIT_BLANK}") == 2
    assert vq.read_hand_check(path) == []  # nothing filled in yet


def test_hand_marks_are_tallied_and_a_filled_audit_survives_a_rerun(world, tmp_path):
    vq, task, problem, items, labels, rows = world
    path = tmp_path / "audit.md"
    vq.audit(path, "step_judge", rows, items, labels, task, "auto")
    text = path.read_text()
    # by hand: the slip is at step 1 (flag on it), the wrong set-up is at step 1 too (flag comes after it)
    filled = text.replace(f"first real error at step: {vq.AUDIT_BLANK}", "first real error at step: 1")
    path.write_text(filled)
    entries = vq.read_hand_check(path)
    assert [(e["sample"], e["flagged"], e["real"]) for e in entries] == [(1, 1, 1), (2, 2, 1)]
    summary = vq.hand_check_summary(entries)
    assert "2 have a first wrong step; the flag is at or before it in 1 (1 on it exactly, 0 not flagged" in summary

    assert vq.audit(path, "step_judge", rows, items, labels, task, "auto") == entries  # a re-run
    assert path.read_text() == filled


def test_a_new_step_verifiers_audit_carries_the_hand_marks_made_on_the_same_candidates(world, tmp_path):
    vq, task, problem, items, labels, rows = world
    judged = tmp_path / "audit-step_judge.md"
    vq.audit(judged, "step_judge", rows, items, labels, task, "auto")
    judged.write_text(judged.read_text().replace(f"first real error at step: {vq.AUDIT_BLANK}",
                                                 "first real error at step: 1\n- why: 3 * 4 is not 14", 1))
    # the rollout verifier flags the other candidates' steps: the marks are the candidates', its flags its own
    rolled = [{**rows[0], "first_error": [None, None, 0]}]
    path = tmp_path / "audit-rollout.md"
    entries = vq.audit(path, "rollout", rolled, items, labels, task, "auto")
    assert [(e["sample"], e["flagged"], e["real"]) for e in entries] == [(1, None, 1)]
    text = path.read_text()
    assert "Hand marks of 1 entries carried over from audit-step_judge.md" in text
    assert "- why: 3 * 4 is not 14" in text
    assert text.count(f"first real error at step: {vq.AUDIT_BLANK}") == 1  # sample 2 is still to check
    # another step split numbers the steps differently: nothing carries over
    assert vq.audit(tmp_path / "audit-lines.md", "step_judge:split=lines", rows, items, labels, task, "lines") == []


def test_a_mark_that_is_not_a_step_number_is_refused_with_its_entry(world, tmp_path):
    vq, task, problem, items, labels, rows = world
    path = tmp_path / "audit.md"
    vq.audit(path, "step_judge", rows, items, labels, task, "auto")
    path.write_text(path.read_text().replace(f"first real error at step: {vq.AUDIT_BLANK}",
                                             "first real error at step: two", 1))
    with pytest.raises(ValueError, match="sample 1: 'first real error at step: two'"):
        vq.read_hand_check(path)


def test_none_means_wrong_by_the_final_answer_only(world):
    vq = world[0]
    entries = [{"problem_id": "p", "sample": 0, "flagged": None, "real": None},
               {"problem_id": "p", "sample": 1, "flagged": None, "real": 3}]
    summary = vq.hand_check_summary(entries)
    assert summary.startswith("hand check of 2 wrong candidates: 1 have a first wrong step")
    assert "in 0 (0 on it exactly, 1 not flagged at all); 1 have no wrong step" in summary


def test_the_automatic_slip_check_reads_chained_equations_whole(world):
    vq = world[0]
    assert vq.first_arithmetic_error(["10 + 0.80 \\times 10 = 10 + 8 = 18 purple flowers"]) is None
    assert vq.first_arithmetic_error(["So 3 * 4 = 12.", "Then 30 + 46 + 38 + 11 + 18 = 151."]) == 1
    assert vq.first_arithmetic_error(["In all 1,200 / 4 = 300, so"]) is None
    assert vq.first_arithmetic_error(["She has 50 + 15 + 30 = 105 dollars = 2 * 52.5"]) == 0


class CountingEmbedder:
    """Stands in for the llama.cpp embedder: a feature per text (its length); counts the texts and
    fails once it has embedded ``fail_after`` problems (a run cut short)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.texts = self.calls = 0
        self.fail_after = fail_after

    def embed(self, texts):
        import numpy as np

        if self.calls == self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.texts += len(texts)
        return np.array([[float(len(t)), 1.0] for t in texts]), 10 * len(texts)


def test_embeddings_are_kept_as_they_come_and_a_rerun_embeds_only_new_problems(tmp_path, monkeypatch):
    import numpy as np

    import redraft.verifiers.probe as probe

    vq = load_benchmark_script("verifier_quality")
    problems = gsm8k_task(tmp_path, [(f"What is {i} + 1?", f"#### {i + 1}") for i in range(12)]).problems()
    items = [vq.ProblemSamples(problem=p, texts=["a", "bb"], calls=[], run_id="r") for p in problems]
    cache = tmp_path / "cache.npz"

    interrupted = CountingEmbedder(fail_after=11)
    monkeypatch.setattr(probe, "llamacpp_embedder", lambda model: interrupted)
    with pytest.raises(KeyboardInterrupt):
        vq.embed_all("m", items, cache)
    with np.load(cache) as archive:  # what was embedded before the cut is kept (saved every 10 problems)
        assert len(archive.files) == 10

    embedder = CountingEmbedder()
    monkeypatch.setattr(probe, "llamacpp_embedder", lambda model: embedder)
    features, tokens = vq.embed_all("m", items, cache)
    assert embedder.texts == 4  # only the two problems not yet kept
    assert len(features) == 12 and tokens == 240  # the kept problems' tokens still count
    question = problems[0].question
    assert features[0][:, 0].tolist() == [len(probe.probe_text(question, "a")), len(probe.probe_text(question, "bb"))]


def test_ids_choose_the_hand_checked_problems_instead_of_the_slice(tmp_path):
    vq = load_benchmark_script("verifier_quality")
    task = gsm8k_task(tmp_path, [(f"What is {i} + 1?", f"#### {i + 1}") for i in range(6)])
    assert [p.id for p in vq.chosen_problems(task, "4, 1", limit=2, offset=0)] == ["1", "4"]
    assert [p.id for p in vq.chosen_problems(task, None, limit=2, offset=3)] == ["3", "4"]
    with pytest.raises(Exception, match="no problem with id 9"):
        vq.chosen_problems(task, "1,9", limit=2, offset=0)
