"""redraft: draft, check and refine LLM answers at test time, and measure what each method buys."""

__version__ = "0.1.0"
