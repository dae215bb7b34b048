"""The toy stand-in for Pyramid Reflection's LLM roles (univid/llm/vocab_agent.py): its rubric at sample points,
its replies in each role's JSON shape through the same parsers the LLM roles go through, and the loop it drives."""

import json

import pytest

from univid.data.synthetic import qa_pairs, sample_clip_specs
from univid.llm.jsonout import ask_json, validate_classification, validate_evaluation, validate_reflection
from univid.llm.roles import RoleLLM, build_backend
from univid.llm.cache import CachedLLM
from univid.llm.vocab_agent import RUBRIC_ID, VocabAgent, classify, evaluate, refined_query, summarize
from univid.reflection.templates import evaluator_system, render


def _role(agent=None):
    return RoleLLM("evaluator", "deepseek-v3.1", CachedLLM(agent or VocabAgent(), None), {"max_new_tokens": 40})


def test_routing_agrees_with_the_worlds_own_question_types():
    questions = [q for spec in sample_clip_specs(0, 60) for q in qa_pairs(spec)]
    assert {q["type"] for q in questions} == {"static", "dynamic"} and len(questions) > 300
    wrong = [q["question"] for q in questions if classify(q["question"]) != q["type"]]
    assert wrong == []


@pytest.mark.parametrize("question,caption,answer,score,verdict", [
    ("What color is the triangle?", "right; a red circle", "blue", 0.4, "reject"),   # caption names another colour
    ("What color is the triangle?", "a blue circle", "Blue.", 1.0, "accept"),         # caption names it
    ("What color is the triangle?", "right", "navy", 0.8, "accept"),                  # synonym; caption silent
    ("What color is the triangle?", "right", "red or blue", 0.3, "reject"),           # a hedge
    ("What color is the triangle?", "right", "a triangle", 0.0, "reject"),            # no colour at all
    ("Which direction does the red square move?", "right", "left", 0.4, "reject"),
    ("Is the red square moving?", "a red square moving left", "yes", 0.8, "accept"),   # yes/no: caption not read
    ("Is the red square on the left or on the right of the blue circle?", "", "left", 0.8, "accept"),
    ("Why is the sky blue?", "", "physics", 0.5, "reject"),                           # outside the vocabulary
])
def test_evaluator_rubric_at_sample_points(question, caption, answer, score, verdict):
    got = evaluate(question, caption, answer)
    assert (got["score"], got["verdict"]) == (score, verdict) and got["brief_reason"]


def test_replies_parse_as_each_roles_json_shape_through_ask_json():
    role = _role()
    ev = ask_json(role, render("evaluator_case", question="What color is the square?", global_caption="a red square",
                               answer="green"), validate_evaluation, system=evaluator_system(), retries=0)
    assert ev.ok and ev.value == {"score": 0.4, "verdict": "reject", "brief_reason": "caption names red, not green"}
    cl = ask_json(role, render("question_type_classification", question="Is the circle growing or shrinking?"),
                  validate_classification, retries=0)
    assert cl.ok and cl.value["qtype"] == "dynamic"
    rejected = json.dumps(ev.value)
    rf = ask_json(role, render("reflection", question="What color is the square?", global_caption="a red square",
                               last_answer="green", eval_json=rejected), validate_reflection, retries=0)
    assert rf.ok and rf.value["refined_query"] == "the square"
    accepted = json.dumps({"score": 0.9, "verdict": "accept", "brief_reason": "ok"})
    rf = ask_json(role, render("reflection", question="What color is the square?", global_caption="", last_answer="red",
                               eval_json=accepted), validate_reflection, retries=0)
    assert rf.ok and rf.value["refined_query"] == ""  # A.5 rule 3: confidence already good
    # another evaluator's unparsed reply (Table 8 swaps the evaluator, not the reflector): still a cue, no crash
    rf = ask_json(role, render("reflection", question="What color is the square?", global_caption="", last_answer="red",
                               eval_json='{"score": "high", "verdict": "maybe"}'), validate_reflection, retries=0)
    assert rf.ok and rf.value["refined_query"] == "the square"


def test_summary_keeps_the_notes_in_order_without_repeats_and_invents_nothing():
    agent = VocabAgent()
    assert agent.generate(render("frame_summarization", notes=["right", "right", "a red square", "right"])) == \
        "right; a red square"
    assert summarize([" ", ""]) == ""
    assert refined_query("Which direction does the dark blue triangle move?") == "the dark blue triangle"
    assert refined_query("How many objects are in the video?") == ""


def test_an_unknown_prompt_is_a_counted_failure_never_a_verdict():
    role = _role()
    res = ask_json(role, "Tell me a joke.", validate_evaluation, retries=1)
    assert not res.ok and res.record()["attempts"] == 2 and "cannot answer" in res.raw[-1]


def test_backend_kind_and_id_name_the_rubric():
    agent = build_backend({"kind": "vocab-agent"})
    assert isinstance(agent, VocabAgent) and agent.backend_id == f"vocab:{RUBRIC_ID}"


def test_toy_serves_the_reflection_roles_by_the_agent_and_keeps_an_llm_agreement_judge():
    from univid.config import resolve
    from univid.llm.roles import role_llms

    roles = role_llms(resolve({"scale": "toy"}), cache=None)
    assert {r: roles[r].backend_id for r in ("classifier", "summarizer", "evaluator", "reflector")} == \
        dict.fromkeys(("classifier", "summarizer", "evaluator", "reflector"), f"vocab:{RUBRIC_ID}")
    assert roles["evaluator"].label == "deepseek-v3.1 (toy stand-in: synthetic-vocab-agent)"
    assert roles["judge"].backend_id.startswith("transformers:")  # gpt-4o: the LLM the agreement is reported for
