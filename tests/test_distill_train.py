"""The exported files load with ``datasets``, TRL's trainers accept them, ``redraft train`` trains a tiny
random-weight model end to end, and the transformers backend serves the result (no downloads)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from distill_support import TASK, sampled_runs, tiny_model_dir

from redraft.distill import export_runs, write_export
from redraft.distill.export import refine_paths
from redraft.distill.train import TrainOptions, build_trainer, load_records, train
from redraft.models import load_model
from redraft.models.base import GenerationParams
from redraft.store import Store

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every format exported once from the scripted runs, and a tiny model whose tokenizer knows their text."""
    root = tmp_path_factory.mktemp("distill")
    store = Store(root / "runs.db")
    runs = [run.id for run in sampled_runs(store)]
    files = {}
    for fmt in ("sft", "dpo", "refine", "steps"):
        files[fmt] = root / f"{fmt}.jsonl"
        write_export(export_runs(store, runs, fmt), files[fmt])
    texts = [line for path in root.glob("*.jsonl") for line in path.read_text().splitlines()]
    texts += [p.question for p in TASK.problems()]
    return files, tiny_model_dir(root / "tiny", texts), root


def test_every_export_loads_with_datasets(exported):
    from datasets import load_dataset

    files, _, _ = exported
    refine = {f"refine.{kind}": path for kind, path in refine_paths(files["refine"]).items()}
    for fmt, path in [*((f, files[f]) for f in ("sft", "dpo", "steps")), *refine.items()]:
        dataset = load_dataset("json", data_files=str(path), split="train")
        assert len(dataset) > 0, fmt
        assert "provenance" in dataset.column_names, fmt


def _options(exported, fmt, **extra):
    files, model_dir, root = exported
    return TrainOptions(format=fmt, data=str(files[fmt]), base=str(model_dir), output=str(root / f"out-{fmt}"),
                        max_steps=2, batch_size=2, max_length=256, **extra)


def _model_and_tokenizer(model_dir):
    from redraft.models.transformers_backend import load_hf

    model, tokenizer = load_hf(model_dir)
    tokenizer.padding_side = "right"
    return model, tokenizer


def test_sft_trainer_tokenizes_prompt_completion_with_loss_on_the_solution_only(exported):
    options = _options(exported, "sft")
    model, tokenizer = _model_and_tokenizer(exported[1])
    trainer = build_trainer(options, model, tokenizer, load_records(options))
    row = trainer.train_dataset[0]
    assert {"input_ids", "labels"} <= set(row), sorted(row)
    mask = [label != -100 for label in row["labels"]]
    assert 0 < sum(mask) < len(mask) and not mask[0]  # the prompt is not trained on
    solution = tokenizer.decode([t for t, m in zip(row["input_ids"], mask, strict=True) if m])
    first = json.loads(open(options.data).readline())
    assert first["completion"][0]["content"] in solution


def test_dpo_trainer_tokenizes_the_pairs(exported):
    options = _options(exported, "dpo")
    model, tokenizer = _model_and_tokenizer(exported[1])
    trainer = build_trainer(options, model, tokenizer, load_records(options))
    row = trainer.train_dataset[0]
    assert {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(row), sorted(row)
    assert row["chosen_ids"] != row["rejected_ids"]


def test_prm_trainer_accepts_the_steps_export(exported):
    """TRL 1.13 keeps PRMTrainer in trl.experimental.prm (later releases removed it: we pin 1.13)."""
    from datasets import load_dataset
    from transformers import AutoConfig, AutoModelForTokenClassification
    from trl.experimental.prm import PRMConfig, PRMTrainer

    files, model_dir, root = exported
    config = AutoConfig.from_pretrained(str(model_dir), num_labels=2)
    model = AutoModelForTokenClassification.from_config(config)  # the same random tiny model, with a step head
    _, tokenizer = _model_and_tokenizer(model_dir)
    dataset = load_dataset("json", data_files=str(files["steps"]), split="train")
    config = PRMConfig(output_dir=str(root / "prm"), report_to=[], use_cpu=True, max_length=256,
                       step_separator="\n", per_device_train_batch_size=2)
    trainer = PRMTrainer(model=model, args=config, train_dataset=dataset.select_columns(
        ["prompt", "completions", "labels"]), processing_class=tokenizer)
    row = trainer.train_dataset[0]
    labelled = [label for label in row["labels"] if label != -100]
    assert labelled == [int(v) for v in dataset[0]["labels"]]  # one label per step, at its last token


def test_the_refine_files_are_sft_ready(exported):
    files, _, _ = exported
    for path in refine_paths(files["refine"]).values():
        options = TrainOptions(format="sft", data=str(path), base="", output="")
        dataset = load_records(options)
        assert dataset.column_names == ["prompt", "completion"]


def test_train_sft_then_dpo_end_to_end_and_serve_the_result(exported):
    sft_meta = train(_options(exported, "sft"))
    assert sft_meta["steps"] == 2 and sft_meta["records"] > 0
    out = sft_meta["options"]["output"]
    assert json.loads(open(os.path.join(out, "redraft_train.json")).read())["data_sha256"]

    async def ask(name):
        model = load_model(f"hf:{name}")
        try:
            messages = TASK.messages(TASK.problems()[0])
            greedy = await model.generate(messages, GenerationParams(n=2, max_tokens=8))
            sampled = await model.generate(messages, GenerationParams(n=3, temperature=1.0, max_tokens=8, seed=1))
            again = await model.generate(messages, GenerationParams(n=3, temperature=1.0, max_tokens=8, seed=1))
            both = await asyncio.gather(*(model.generate(messages, GenerationParams(max_tokens=8)) for _ in range(3)))
            return model.identity, greedy, sampled, again, both
        finally:
            await model.close()

    identity, greedy, sampled, again, both = asyncio.run(ask(out))
    assert identity.startswith("hf:") and len(identity) > 40
    assert len(greedy) == 2 and greedy[0].text == greedy[1].text
    assert all(c.prompt_tokens > 0 and 0 < c.completion_tokens <= 8 for c in greedy + sampled)
    assert [c.text for c in sampled] == [c.text for c in again]  # a seeded call repeats
    assert all(b[0].text == greedy[0].text for b in both)  # greedy requests batched together agree
    dpo_meta = train(_options(exported, "dpo", nll_weight=1.0))
    assert dpo_meta["steps"] == 2 and dpo_meta["train_loss"] == dpo_meta["train_loss"]  # not NaN


def test_the_train_command_trains_and_saves(exported, capsys):
    from redraft.cli import main

    files, model_dir, root = exported
    out = root / "out-cli"
    code = main(["train", str(files["sft"]), "--format", "sft", "--base", str(model_dir), "-o", str(out),
                 "--max-steps", "1", "--batch-size", "2", "--max-length", "256"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "redraft_train.json").read_text())["steps"] == 1
    assert f"saved to {out}" in capsys.readouterr().err
