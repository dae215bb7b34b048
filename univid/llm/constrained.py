"""Grammar-constrained JSON decoding for local transformers models, through lm-format-enforcer's core.

A role whose reply must be JSON (classifier, evaluator, reflector) passes its JSON schema (`json_schema`); a local
model then only samples tokens that keep the reply a valid prefix of a document matching the schema
(lmformatenforcer.JsonSchemaParser + TokenEnforcer), so a parse failure is rare (and still counted: a reply cut by
max_new_tokens stays unparseable). lm-format-enforcer's own transformers integration imports modules transformers 5
removed, so the two pieces it provides (the tokenizer table and the prefix function for `generate`) are built here
from its framework-free core. The tokenizer table decodes every token once; it is built once per tokenizer.
"""

from __future__ import annotations

import functools

_TABLES: dict[int, object] = {}


def tokenizer_data(tok):
    """lm-format-enforcer's TokenEnforcerTokenizerData for a transformers tokenizer (cached per tokenizer object)."""
    from lmformatenforcer import TokenEnforcerTokenizerData

    if id(tok) not in _TABLES:
        vocab = len(tok)
        special = set(tok.all_special_ids)
        zero = tok.encode("0", add_special_tokens=False)[-1]
        regular = []
        for i in range(vocab):
            if i in special:
                continue
            # after a "0": a token that starts a word decodes with its leading space (lm-format-enforcer's rule)
            after_zero = tok.decode([zero, i])[1:]
            regular.append((i, after_zero, len(after_zero) > len(tok.decode([i]))))
        decode = functools.partial(_decode, tok)
        _TABLES[id(tok)] = TokenEnforcerTokenizerData(regular, decode, tok.eos_token_id, False, vocab)
    return _TABLES[id(tok)]


def _decode(tok, ids: list[int]) -> str:
    return tok.decode(ids).rstrip("\ufffd")  # an unfinished multi-byte character is not text yet


def prefix_allowed_tokens_fn(tok, schema: dict):
    """generate(prefix_allowed_tokens_fn=...) that allows only tokens continuing a JSON document of `schema`."""
    from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser, TokenEnforcer

    # Compact JSON: no run of whitespace, so a short token budget is spent on the values.
    config = CharacterLevelParserConfig(max_consecutive_whitespaces=1, force_json_field_order=True)
    enforcer = TokenEnforcer(tokenizer_data(tok), JsonSchemaParser(schema, config=config))

    def allowed(batch_id: int, sent) -> list[int]:
        return enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens

    return allowed
