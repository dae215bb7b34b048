"""What a harness-pretrained checkpoint (the toy scale's pretrain job, univid.train.pretrain) records about the model
config it was built from, and the check that a run's config is that one."""

from __future__ import annotations

from pathlib import Path

from univid.config.jobs import PLACEHOLDER
from univid.config.load import config_hash
from univid.io import read_json

PARTS_FILE = "univid_pretrain.json"
# The model config sections each saved directory stands for (what `check_pretrained` compares).
SAVED_PARTS = {"wan": ("vae", "dit", "text_encoder", "tokenizer", "max_text_tokens"),
               "mllm": ("vit", "llm", "tokenizer")}


def part_hashes(model_cfg: dict, saved: str) -> dict[str, str]:
    """{section: hash of what builds it} for one saved directory; `path` is left out (it names the output itself)."""
    out = {}
    for section in SAVED_PARTS[saved]:
        value = model_cfg.get(section)
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("path", "subfolder", "tokenizer_subfolder")}
        out[section] = config_hash({"section": section, "value": value})
    return out


def check_pretrained(model_cfg: dict, directory: str | Path, saved: str, key: str,
                     sections: tuple[str, ...] | None = None) -> None:
    """One line when `directory` (a pretrain job's `wan/` or `mllm/`) was pretrained for another model config (of
    `sections`, default all the directory stands for)."""
    record_path = Path(directory) / PARTS_FILE
    if not record_path.is_file():
        return  # not a harness pretrain output (a public checkpoint): nothing to compare
    record = read_json(record_path)
    want = part_hashes(model_cfg, saved)  # only the sections this job's config has (a job reads some of them)
    differ = sorted(s for s in want if s in model_cfg and s in (sections or want)
                    and record.get("parts", {}).get(s) != want[s])
    if differ:
        raise ValueError(f"{key} '{directory}': pretrained for another model config (model.{differ[0]} differs; "
                         f"expected the pretrain job of this config, e.g. `{PLACEHOLDER}/{saved}` in the toy preset)")
