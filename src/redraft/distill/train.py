"""Fine-tune a causal LM on an exported training set with TRL and LoRA, on the CPU.

``sft`` runs TRL's SFTTrainer on prompt-completion records (the loss falls on the completion
only); ``dpo`` runs DPOTrainer, by default with Iterative RPO's extra NLL term on the chosen
solution (TRL: ``loss_type=["sigmoid", "sft"]``; ``nll_weight=0`` gives plain DPO). The LoRA
adapter is merged into the base weights and the result saved as an ordinary transformers model
directory, so ``hf:DIR`` opens it with redraft's transformers backend and the same runner
evaluates it. ``redraft_train.json`` in that directory records the data's sha256, the base, the
options, the loss curve and the library versions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..models.base import ModelError

TRAIN_FORMATS = ("sft", "dpo")
COLUMNS = {"sft": ["prompt", "completion"], "dpo": ["prompt", "chosen", "rejected"]}


@dataclass
class TrainOptions:
    format: str
    data: str
    base: str
    output: str
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 512
    beta: float = 0.1  # dpo
    nll_weight: float = 1.0  # dpo: Iterative RPO's NLL term on the chosen solution; 0 = plain DPO
    seed: int = 0
    threads: int | None = None


def resolve_base(base: str) -> tuple[Path, str]:
    """(path, identity) of a base model: a built-in name (its pinned GGUF), a .gguf file or a model directory."""
    from ..models.registry import BUILTIN_MODELS
    from ..models.transformers_backend import weights_identity

    if base in BUILTIN_MODELS:
        from ..models.fetch import resolve_model_file

        path, sha256 = resolve_model_file(base, lambda _: None)
        return path, f"gguf:{sha256}"
    path = Path(base).expanduser()
    if not path.exists():
        raise ModelError(f"--base {base}: not a built-in model name, a .gguf file or a model directory")
    return path, f"hf:{weights_identity(path)}"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_records(options: TrainOptions) -> Any:
    """The training set as a datasets.Dataset with only the trainer's columns."""
    from datasets import load_dataset

    data = Path(options.data)
    if not data.is_file():
        raise ValueError(f"no training data at {data}")
    dataset = load_dataset("json", data_files=str(data), split="train")
    missing = [c for c in COLUMNS[options.format] if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{data} is not a {options.format} export: missing column(s) {', '.join(missing)}")
    if len(dataset) == 0:
        raise ValueError(f"{data} has no records")
    return dataset.select_columns(COLUMNS[options.format])


def build_trainer(options: TrainOptions, model: Any, tokenizer: Any, dataset: Any) -> Any:
    """The TRL trainer for ``options.format`` with a LoRA adapter on every linear layer."""
    from peft import LoraConfig

    lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    common: dict[str, Any] = dict(
        output_dir=str(Path(options.output) / "checkpoints"), num_train_epochs=options.epochs,
        max_steps=options.max_steps, per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum, learning_rate=options.learning_rate,
        logging_steps=1, save_strategy="no", report_to=[], seed=options.seed, use_cpu=True,
        bf16=False, fp16=False, max_length=options.max_length, dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if options.format == "sft":
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**common, completion_only_loss=True)
        return SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=lora)
    from trl import DPOConfig, DPOTrainer

    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, options.nll_weight]} \
        if options.nll_weight > 0 else {"loss_type": ["sigmoid"]}
    config = DPOConfig(**common, beta=options.beta, **losses)
    return DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)


def train(options: TrainOptions, say: Any = lambda _: None) -> dict[str, Any]:
    """Train, merge the adapter, save the model directory; returns the metadata written beside it."""
    if options.format not in TRAIN_FORMATS:
        raise ValueError(f"redraft train takes --format {' or '.join(TRAIN_FORMATS)}, not {options.format!r}")
    try:
        import torch
        import transformers
        import trl
    except ImportError:
        raise ModelError("training needs the train extra: pip install 'redraft[train]'") from None
    from ..models.transformers_backend import load_hf

    if options.threads:
        torch.set_num_threads(options.threads)
    dataset = load_records(options)
    base_path, base_identity = resolve_base(options.base)
    say(f"loading {base_path.name} ({len(dataset)} {options.format} records)")
    model, tokenizer = load_hf(base_path)
    tokenizer.padding_side = "right"
    trainer = build_trainer(options, model, tokenizer, dataset)
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    say(f"trained {result.global_step} steps in {seconds:.0f} s; merging the adapter")
    merged = trainer.model.merge_and_unload()
    output = Path(options.output)
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(output))
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(str(output))
    meta = {
        "options": asdict(options), "base_path": str(base_path), "base_identity": base_identity,
        "data_sha256": file_sha256(Path(options.data)), "records": len(dataset), "steps": result.global_step,
        "train_loss": result.training_loss, "seconds": round(seconds, 1),
        "log_history": trainer.state.log_history,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
    }
    (output / "redraft_train.json").write_text(json.dumps(meta, indent=1, default=str))
    return meta
