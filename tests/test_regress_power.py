"""benchmarks/perf/regress_power's planted defects stay plantable: each `find` occurs exactly once in today's source
and the patched file compiles, so a refactor that moves a snippet fails here instead of silently planting nothing.
The script itself (a workflow run per defect) is never run by the tests."""

import runpy
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
POWER = runpy.run_path(str(ROOT / "benchmarks" / "perf" / "regress_power"))  # defines; main() only as a script
DEFECTS = POWER["DEFECTS"]
BY_NAME = {d["name"]: d for d in DEFECTS}
# The issue's list (one of "working set left unsorted" / "MMR's lambda ignored" would do; both are planted).
REQUIRED = {"tma_disabled", "connector_zeroed", "vit_tokens_dropped", "working_set_unsorted", "mmr_lambda_ignored",
            "evaluator_threshold_ignored", "stage2_lr_zero", "judge_inverted"}


def test_the_issues_defects_are_all_planted_once_each():
    assert len(BY_NAME) == len(DEFECTS)
    assert REQUIRED <= set(BY_NAME)
    for d in DEFECTS:
        assert set(d) >= {"name", "file", "find", "replace", "why"}
        assert (ROOT / "univid" / d["file"]).is_file()


@pytest.mark.parametrize("defect", DEFECTS, ids=[d["name"] for d in DEFECTS])
def test_each_defect_occurs_exactly_once_and_its_patch_compiles(defect):
    path = ROOT / "univid" / defect["file"]
    text = path.read_text()
    assert text.count(defect["find"]) == 1, f"{defect['name']}: snippet gone or ambiguous in univid/{defect['file']}"
    patched = POWER["patched_source"](defect)
    assert patched != text and patched.count(defect["replace"]) == 1
    compile(patched, str(path), "exec")


def test_a_snippet_that_is_gone_is_a_one_line_error():
    defect = dict(BY_NAME["judge_inverted"], find="return 'not in the file'\n")
    with pytest.raises(POWER["DefectError"], match=r"0 times") as err:
        POWER["apply_defect"]("x = 1\n", defect)
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(POWER["DefectError"], match=r"2 times"):
        POWER["apply_defect"](defect["find"] * 2, defect)


def _patched_module(name: str, module: str) -> types.ModuleType:
    mod = types.ModuleType(module)
    exec(compile(POWER["patched_source"](BY_NAME[name]), module, "exec"), mod.__dict__)
    return mod


# The pure-Python defects also do what they say (the model ones are checked only to compile: building models is slow).
def test_the_inverted_judge_says_no_to_a_right_answer():
    judge = _patched_module("judge_inverted", "vocab_judge_inverted").VocabJudge()
    prompt = "Question: What colour is the ball?\nCorrect Answer: red\nPredicted Answer: red\n"
    assert judge.generate(prompt) == "{'pred': 'no', 'score': 0}"


def test_the_retrieval_defects_change_the_working_set():
    from univid.reflection import retrieval

    sim = np.array([0.5, 0.1, 0.9])
    assert retrieval.expand(sim, [], 2) == [0, 2]
    assert _patched_module("working_set_unsorted", "retrieval_unsorted").expand(sim, [], 2) == [2, 0]
    # frames 0 and 1 near-duplicates: MMR at lambda 0.5 trades frame 1 for the diverse frame 2; relevance alone not
    embeds = np.array([[1.0, 0.0], [0.99, 0.141], [0.6, 0.8]])
    sims = retrieval.similarities(embeds, [1.0, 0.0])
    assert retrieval.mmr_select(embeds, sims, [0, 1, 2], 2, 0.5)[0] == [0, 2]
    ignored = _patched_module("mmr_lambda_ignored", "retrieval_lambda_ignored")
    assert ignored.mmr_select(embeds, sims, [0, 1, 2], 2, 0.5)[0] == [0, 1]
