"""Video-ChatGPT conversations -> token pieces for instruction SFT (and the matching inference prompt).

A conversation is rendered with the tokenizer's own chat template. Each assistant turn's text (its content and the
template's end-of-turn marker) is a supervised piece; everything else (system prompt, user turns, role headers) is
context only, so the loss never sees user tokens. The `<video>` placeholder of a user turn is a piece of its own, where
the visual tokens are spliced in (LLaVA / Video-ChatGPT convention); without one, the visual tokens go first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

VIDEO_PLACEHOLDER = "<video>"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class Piece:
    kind: str  # "text" (context), "answer" (supervised) or "video" (visual tokens go here)
    ids: tuple[int, ...] = ()


def _messages(conversations: list[dict]) -> list[dict]:
    out = []
    for turn in conversations:
        role = ROLES.get(turn.get("from"))
        if role is None or not isinstance(turn.get("value"), str):
            raise ValueError(f"conversation turn {turn!r}: expected {{'from': human|gpt, 'value': text}}")
        out.append({"role": role, "content": turn["value"]})
    return out


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("model.tokenizer: no chat template (expected an instruct tokenizer, e.g. Qwen2-*-Instruct)")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _split_video(text: str) -> list[tuple[str, str]]:
    out = []
    for i, part in enumerate(text.split(VIDEO_PLACEHOLDER)):
        if i:
            out.append(("video", ""))
        if part:
            out.append(("text", part))
    return out


def text_segments(tokenizer, conversations: list[dict], add_generation_prompt: bool = False) -> list[tuple[str, str]]:
    """[(kind, text)] in order; kind is text | answer | video. `add_generation_prompt` ends with an open assistant turn
    (the inference prompt for a conversation that ends with the user's question)."""
    messages = _messages(conversations)
    segments: list[tuple[str, str]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], add_generation_prompt=True)
        full = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (prefix.startswith(done) and full.startswith(prefix)):
            raise ValueError("model.tokenizer: its chat template does not render a conversation prefix-wise "
                             "(expected each turn to extend the previous rendering)")
        segments += _split_video(prefix[len(done):])
        segments.append(("answer", full[len(prefix):]))
        done = full
    tail = _render(tokenizer, messages, add_generation_prompt=add_generation_prompt)[len(done):]
    segments += _split_video(tail)
    if not any(kind == "video" for kind, _ in segments):
        segments.insert(0, ("video", ""))
    return segments


def conversation_pieces(tokenizer, conversations: list[dict], add_generation_prompt: bool = False) -> list[Piece]:
    """Token pieces of one conversation (each segment tokenized on its own, special tokens parsed)."""
    pieces = []
    for kind, text in text_segments(tokenizer, conversations, add_generation_prompt):
        if kind == "video":
            pieces.append(Piece("video"))
        else:
            ids = tokenizer(text, add_special_tokens=False).input_ids
            if ids:
                pieces.append(Piece(kind, tuple(ids)))
    if not any(p.kind == "answer" for p in pieces) and not add_generation_prompt:
        raise ValueError("conversation: no assistant turn to learn from (expected a 'gpt' turn with a non-empty answer)")
    return pieces


def assemble(pieces: list[Piece], visual: torch.Tensor, embed) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs_embeds [L, d], labels [L]) for one sample: labels are the answer tokens, -100 everywhere else."""
    embeds, labels = [], []
    for p in pieces:
        if p.kind == "video":
            embeds.append(visual)
            labels.append(torch.full((visual.shape[0],), -100, dtype=torch.long))
            continue
        ids = torch.tensor(p.ids, dtype=torch.long, device=visual.device)
        embeds.append(embed(ids).to(visual.dtype))
        labels.append(ids.cpu() if p.kind == "answer" else torch.full((len(p.ids),), -100, dtype=torch.long))
    return torch.cat(embeds), torch.cat(labels).to(visual.device)
