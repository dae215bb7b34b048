"""The six Appendix A.5 prompts (wording verbatim from the paper, markdown emphasis removed, LaTeX relations as
symbols) plus three harness additions the paper does not print: the Actor's prompt (`actor`), the Evaluator's
current case (`evaluator_case`) and its one-shot example (`evaluator_example_user`/`_assistant`, filling the
paper's {one_shot_user}/{one_shot_assistant})."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
PAPER_PROMPTS = ("question_type_classification", "frame_summarization", "answer_evaluation", "reflection",
                 "single_frame_analysis", "global_answer")
HARNESS_PROMPTS = ("actor", "evaluator_case", "evaluator_example_user", "evaluator_example_assistant")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROMPT_DIR)), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=False)


def render(name: str, **values) -> str:
    if name not in PAPER_PROMPTS + HARNESS_PROMPTS:
        raise ValueError(f"prompt {name!r}: not known (expected one of {', '.join(PAPER_PROMPTS + HARNESS_PROMPTS)})")
    return _env().get_template(f"{name}.j2").render(**values).strip()


def evaluator_system() -> str:
    return render("answer_evaluation", one_shot_user=render("evaluator_example_user"),
                  one_shot_assistant=render("evaluator_example_assistant"))
