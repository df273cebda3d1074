"""reward_model on tiny random transformers models built here, and over a fake HTTP endpoint; the probe."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from redraft.accounting import Cost
from redraft.context import SolveContext
from redraft.models.scripted import ScriptedModel
from redraft.store import ProblemRecord, Store
from redraft.tasks.arithmetic import ArithmeticTask
from redraft.tasks.base import TaskView
from redraft.verifiers import make_verifier_from_spec
from redraft.verifiers.probe import (
    Example,
    LogisticProbe,
    ProbeError,
    ProbeVerifier,
    collect_examples,
    train_probe,
)
from redraft.verifiers.reward_model import RewardModelError, RewardModelVerifier

SOLUTION = "three plus four is seven\n\nseven times two is fourteen\n\nanswer fourteen"


def make_ctx() -> SolveContext:
    task = ArithmeticTask(count=1)
    return SolveContext(problem=task.problems()[0], task=TaskView(task), models={"solver": ScriptedModel()})


# -- a tiny transformers model, random weights ---------------------------------------------------------------
def build_tiny(directory: Path, head: str) -> Path:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted(set((ArithmeticTask(count=1).problems()[0].question + " " + SOLUTION).split()) | {"+", "-"})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<extra_0>", "ки"]})
    config = transformers.Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                      max_position_embeddings=512, pad_token_id=0,
                                      num_labels=1 if head == "sequence" else 2)
    cls = {"sequence": transformers.Qwen2ForSequenceClassification,
           "token": transformers.Qwen2ForTokenClassification,
           "lm_tags": transformers.Qwen2ForCausalLM}[head]
    transformers.set_seed(0)
    path = directory / head
    cls(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tiny")
    return {head: build_tiny(directory, head) for head in ("sequence", "token", "lm_tags")}


def logits_of(path: Path, head: str, text: str):
    import torch
    import transformers

    cls = {"sequence": transformers.AutoModelForSequenceClassification,
           "token": transformers.AutoModelForTokenClassification,
           "lm_tags": transformers.AutoModelForCausalLM}[head]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return encoded["input_ids"][0], cls.from_pretrained(path)(**encoded).logits[0]


def test_orm_sequence_head_scores_like_the_model(tiny: dict[str, Path]) -> None:
    path = tiny["sequence"]
    verifier = make_verifier_from_spec(f"reward_model:model={path},head=sequence")
    ctx = make_ctx()
    score = asyncio.run(verifier.score(ctx, SOLUTION))
    _, logits = logits_of(path, "sequence", f"{ctx.problem.question}\n\n{SOLUTION.strip()}")
    assert score.value == pytest.approx(float(1 / (1 + np.exp(-logits[0].item()))), abs=1e-5)
    assert score.steps is None
    assert ctx.cost.by_role["reward_model"].calls == 1 and ctx.cost.by_role["reward_model"].prompt_tokens > 0


def test_prm_token_head_gives_one_value_per_step(tiny: dict[str, Path]) -> None:
    path = tiny["token"]
    verifier = RewardModelVerifier(model=str(path), head="token", split="paragraphs")
    ctx = make_ctx()
    score = asyncio.run(verifier.score(ctx, SOLUTION))
    steps = SOLUTION.split("\n\n")
    ids, logits = logits_of(path, "token", f"{ctx.problem.question}\n\n" + "".join(s + "<extra_0>" for s in steps))
    import transformers

    tag = transformers.AutoTokenizer.from_pretrained(path).convert_tokens_to_ids("<extra_0>")
    expected = [float(np.exp(row[1]) / np.exp(row).sum()) for row in logits[ids == tag].numpy()]
    assert len(score.steps) == 3
    assert score.steps == pytest.approx(tuple(expected), abs=1e-5)
    assert score.value == pytest.approx(min(expected), abs=1e-5)
    assert score.first_error == next((i for i, v in enumerate(expected) if v < 0.5), None)


def test_prm_lm_tags_head_reads_good_and_bad_tokens(tiny: dict[str, Path]) -> None:
    path = tiny["lm_tags"]
    verifier = RewardModelVerifier(model=str(path), head="lm_tags", split="paragraphs", aggregate="mean")
    score = asyncio.run(verifier.score(make_ctx(), SOLUTION))
    assert len(score.steps) == 3 and all(0.0 < v < 1.0 for v in score.steps)
    assert score.value == pytest.approx(sum(score.steps) / 3)


def test_prm_refuses_a_multi_token_step_tag(tiny: dict[str, Path]) -> None:
    path = tiny["token"]
    verifier = RewardModelVerifier(model=str(path), head="token", step_tag="two words")
    with pytest.raises(RewardModelError, match="must be one"):
        asyncio.run(verifier.score(make_ctx(), SOLUTION))


def test_reward_model_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RewardModelVerifier()
    with pytest.raises(ValueError, match="exactly one"):
        RewardModelVerifier(model="x", endpoint="http://localhost:1")


class FakeVllm(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeVllm.bodies.append({"path": self.path, **body})
        if self.path == "/classify":
            reply = {"data": [{"index": 0, "probs": [0.25, 0.75], "num_classes": 2}], "usage": {"prompt_tokens": 9}}
        else:
            rows = [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]
            reply = {"data": [{"index": 0, "data": rows}], "usage": {"prompt_tokens": 12}}
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_reward_model_over_http_classify_and_pooling() -> None:
    server = HTTPServer(("127.0.0.1", 0), FakeVllm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        orm = make_verifier_from_spec(f"reward_model:endpoint={url},api=classify,served_name=orm")
        ctx = make_ctx()
        assert asyncio.run(orm.score(ctx, SOLUTION)).value == pytest.approx(0.75)
        assert FakeVllm.bodies[-1]["model"] == "orm" and isinstance(FakeVllm.bodies[-1]["input"], list)
        assert ctx.cost.by_role["reward_model"].prompt_tokens == 9
        prm = RewardModelVerifier(endpoint=url, api="pooling", head="token", split="paragraphs")
        score = asyncio.run(prm.score(make_ctx(), SOLUTION))
        assert score.steps == pytest.approx((0.9, 0.2, 0.7)) and score.first_error == 1
        assert FakeVllm.bodies[-1]["input"].count("<extra_0>") == 3
        dead = RewardModelVerifier(endpoint="http://127.0.0.1:1", timeout=2)
        with pytest.raises(RewardModelError, match="failed"):
            asyncio.run(dead.score(make_ctx(), SOLUTION))
    finally:
        server.shutdown()


# -- probe --------------------------------------------------------------------------------------------------
class FakeEmbedder:
    """Embeds a text as (count of 'right', count of 'wrong', length / 100): a probe can learn that."""

    identity = "gguf:fake"

    def embed(self, texts):
        rows = [[t.count("right"), t.count("wrong"), len(t) / 100] for t in texts]
        return np.array(rows, dtype=float), sum(len(t.split()) for t in texts)


def examples(n: int = 40) -> list[Example]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        correct = bool(i % 2)
        text = ("right " if correct else "wrong ") * int(rng.integers(1, 4)) + "x" * int(rng.integers(0, 50))
        out.append(Example(str(i), "q", text, correct))
    return out


def test_probe_trains_saves_loads_and_scores(tmp_path: Path) -> None:
    probe = train_probe(examples(), FakeEmbedder(), model_name="fake", runs=["r1"])
    path = probe.save(tmp_path / "probe.npz")
    assert path.exists()
    loaded = LogisticProbe.load(path)
    assert loaded.meta["model_identity"] == "gguf:fake" and loaded.meta["examples"] == 40
    assert loaded.meta["runs"] == ["r1"] and loaded.meta["format"] == 1
    verifier = make_verifier_from_spec(f"probe:path={path}")
    assert isinstance(verifier, ProbeVerifier)
    verifier.embedder = FakeEmbedder()
    ctx = make_ctx()
    good = asyncio.run(verifier.score(ctx, "right right"))
    bad = asyncio.run(verifier.score(ctx, "wrong wrong"))
    assert 0.0 <= bad.value < 0.5 < good.value <= 1.0
    assert ctx.cost.by_role["probe"].calls == 2


def test_probe_refuses_other_models_embeddings_and_bad_files(tmp_path: Path) -> None:
    path = train_probe(examples(), FakeEmbedder(), model_name="fake").save(tmp_path / "p.npz")
    verifier = ProbeVerifier(path=str(path))

    class Other(FakeEmbedder):
        identity = "gguf:other"

    verifier.embedder = Other()
    with pytest.raises(ProbeError, match="fitted to embeddings of gguf:fake"):
        asyncio.run(verifier.score(make_ctx(), "right"))
    (tmp_path / "junk.npz").write_bytes(b"not a probe")
    with pytest.raises(ProbeError, match="not a redraft probe"):
        ProbeVerifier(path=str(tmp_path / "junk.npz"))
    with pytest.raises(ProbeError, match="both correct and incorrect"):
        LogisticProbe.fit(np.ones((3, 2)), [True, True, True])


def test_collect_examples_grades_every_stored_sample(tmp_path: Path) -> None:
    task = ArithmeticTask(count=1)
    problem = task.problems()[0]
    key = task.reference(problem)
    store = Store(tmp_path / "runs.db")
    run = store.create_run(task="arithmetic", task_options={}, strategy="self_consistency", strategy_options={},
                           model="m", model_identity="m", settings={}, problem_ids=[problem.id], uses_oracle=False)
    outputs = [f"\\boxed{{{key}}}", "\\boxed{-1}", f"\\boxed{{{key}}}"]
    trace = [{"type": "call", "role": "solver", "outputs": outputs},
             {"type": "call", "role": "judge", "outputs": ["Verdict: Yes"]}]
    store.save_result(ProblemRecord(run.id, problem.id, 0, key, True, "", outputs[0], {}, trace, Cost(), 0.0, None))
    found = collect_examples(store, [run.id], task)
    assert [(e.text, e.correct) for e in found] == [(outputs[0], True), (outputs[1], False)]


@pytest.mark.model
def test_probe_on_real_llamacpp_embeddings() -> None:
    from redraft.verifiers.probe import llamacpp_embedder

    embedder = llamacpp_embedder("smollm2-135m")
    features, tokens = embedder.embed(["2 + 2 = 4", "2 + 2 = 5"])
    assert features.shape[0] == 2 and features.shape[1] > 100 and tokens > 0
    assert embedder.identity.startswith("gguf:")
