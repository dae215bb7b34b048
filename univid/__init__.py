"""UniVid harness: a reproducible benchmark and ablation harness for the UniVid unified video model."""

__version__ = "0.1.0"
