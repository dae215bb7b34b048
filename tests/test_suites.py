"""Paper Table 10's suites: official answer extraction on messy replies, official layouts (synthetic round trip,
missing files), scoring formulas, and the Actor-run suite job with its cache (a rerun makes no model call)."""

import json
import random

import pytest

from univid.eval.suites import mlvu, mmbench_video, mmlu, mmmu, module, videomme


# ------------------------------------------------------------------------------------------ answer extraction

@pytest.mark.parametrize("reply, letter", [
    ("B", "B"),
    ("The best answer is: C.", "C"),
    ("(D) a red circle", "D"),
    ("The correct answer is B because the circle is red.", "B"),
    ("Answer: C", "A"),  # official quirk: the first capital A-D anywhere, here the A of "Answer"
    ("the circle is red and it moves to the left side of the frame slowly", ""),  # > 10 words, no A-D
    ("b", ""),  # lower case is not a letter answer
    ("", ""),
])
def test_videomme_extract_characters_regex(reply, letter):
    assert videomme.extract(reply) == letter


def test_videomme_concatenated_prefixes_are_never_removed():
    # "Best answer:" "Best option:" is one string in the official list, so "Best answer:" stays and its B wins.
    assert videomme.extract_characters_regex("Best answer: the red one") == "B"
    assert videomme.extract_characters_regex("The answer is D") == "D"  # a listed prefix is removed


@pytest.mark.parametrize("reply, letter", [
    ("(B)", "B"),
    ("B", "B"),
    ("The answer is C.", "C"),
    ("I first thought (A) but (C) fits better", "C"),     # several bracketed: the last mentioned
    ("It looks like it is definitely a square shape to me", "B"),  # > 5 words: the option's text
    ("D. triangle", "D"),
])
def test_mmmu_parse_multi_choice_response(reply, letter):
    index2ans, choices = mmmu.get_multi_choice_info(["circle", "square", "triangle", "triangle-ish"])
    assert mmmu.parse_multi_choice_response(reply, choices, index2ans, random.Random(0)) == letter


def test_mmmu_fallback_is_a_seeded_choice():
    sample = {"question_type": "multiple-choice", "options": "['red', 'green', 'blue']", "question_id": "v_1"}
    picks = {mmmu.extract("hmm", sample, seed=3) for _ in range(5)}
    assert len(picks) == 1 and picks <= {"A", "B", "C"}


def test_mmmu_open_response_and_eval_open():
    preds = mmmu.parse_open_response("Counting them, the answer is 2.")
    assert 2.0 in preds
    assert mmmu.eval_open("2", preds) and not mmmu.eval_open("3", preds)
    assert mmmu.eval_open("2,000", mmmu.parse_open_response("so the total is 2000"))
    assert mmmu.eval_open("Paris", mmmu.parse_open_response("The capital is Paris."))
    sample = {"question_type": "open", "answer": "2", "question_id": "v_2", "options": "[]"}
    assert mmmu.correct(mmmu.extract("There are 2 objects", sample), sample)


@pytest.mark.parametrize("reply, letter", [
    ("B", "B"), (" (C) because 7 + 5 = 12", "C"), ("Answer: D", "D"), ("The answer is A.", "A"),
    ("I would pick D here", "D"), ("twelve", ""), ("a", ""),
])
def test_mmlu_letter(reply, letter):
    assert mmlu.extract(reply) == letter


@pytest.mark.parametrize("reply, pred, right", [
    ("A) red", "A", True), ("A", "A", True), ("(A) red", "(A", False), ("A. red", "A. red", False),
    ("B) green", "B", False),
])
def test_mlvu_check_ans(reply, pred, right):
    assert mlvu.extract(reply) == pred and mlvu.correct(pred, {"answer": "A"}) is right


@pytest.mark.parametrize("reply, score", [
    ("2", 2), (" 3\n", 3), ("0", 0), ("Score: 2", -1), ("2.5", -1), ("True", -1), ("'2'", -1), (None, -1),
    ("The red circle appears later in the video.", -1),
])
def test_mmbench_video_judge_score(reply, score):
    assert mmbench_video.parse_score(reply) == score


# ------------------------------------------------------------------------------------------ scoring formulas

def test_mmbench_video_all_counts_failures_as_zero_valid_leaves_them_out():
    s = mmbench_video.summarize([{"judge_score": 3}, {"judge_score": -1}, {"judge_score": 1}])
    assert s["score"] == pytest.approx(4 / 3) and s["score_valid"] == pytest.approx(2.0) and s["judge_failures"] == 1


def test_mlvu_m_avg_is_the_mean_of_task_accuracies():
    rows = [{"sample": {"task": "1_plotQA"}, "correct": True}, {"sample": {"task": "1_plotQA"}, "correct": True},
            {"sample": {"task": "4_count"}, "correct": False}]
    assert mlvu.summarize(rows)["accuracy"] == pytest.approx(50.0)  # micro would be 66.7


def test_videomme_short_medium_subset_and_answered_only():
    def row(d, ok, pred="A"):
        return {"sample": {"duration": d}, "correct": ok, "pred": pred}
    s = videomme.summarize([row("short", True), row("medium", False, ""), row("long", True), row("long", True)])
    assert s["accuracy"] == 75.0 and s["accuracy_short_medium"] == 50.0 and s["n_short_medium"] == 2
    assert s["accuracy_answered"] == 100.0 and s["unextracted"] == 1


def test_prompts_are_the_official_formats():
    p = mmlu.prompt({"subject": "high_school_physics", "question": "Q?", "options": ["a", "b", "c", "d"]})
    assert p == ("The following are multiple choice questions (with answers) about  high school physics.\n\n"
                 "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:")
    p = videomme.prompt({"question": "Q?", "options": ["A. x", "B. y", "C. z", "D. w"]})
    assert p.endswith("correct option.\nQ?\nA. x\nB. y\nC. z\nD. w\nThe best answer is:")
    p = mlvu.prompt({"question": "Q?", "candidates": ["x", "y"]})
    assert p.endswith("Question: Q?\nOptions:\n(A) x\n(B) y\nOnly give the best option.\nBest option:(")
    p = mmmu.prompt({"question": "Q <image 1>?", "options": "['x', 'y']", "question_type": "multiple-choice"})
    assert p == "Q <image 1>?\nA. x\nB. y\n\nAnswer with the option's letter from the given choices directly."
    assert mmbench_video.judge_prompt("q", "a", "p") == ("Question: q\nGroundtruth answer: a\nCandidate answer: p\n"
                                                         "Your response: ")
    assert "Your response should be a single integer from 0, 1, 2, or 3." in mmbench_video.JUDGE_SYSTEM


# ------------------------------------------------------------------------------------------ layouts

@pytest.mark.parametrize("name, missing", [
    ("mmlu", "test: MMLU directory not found"), ("mmmu", "MMMU file not found"),
    ("videomme", r"videomme/test\.json: Video-MME file not found"),
    ("mmbench_video", r"MMBench-Video\.tsv: MMBench-Video file not found"),
    ("mlvu", "json: MLVU directory not found"),
])
def test_missing_release_is_one_line(tmp_path, name, missing):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=missing) as e:
        module(name).load(tmp_path / "empty")
    assert "\n" not in str(e.value)


def test_mmlu_bad_row_names_file_and_line(tmp_path):
    (tmp_path / "data" / "test").mkdir(parents=True)
    (tmp_path / "data" / "test" / "anatomy_test.csv").write_text("question,A,B,C,D,answer\n")
    with pytest.raises(ValueError, match=r"anatomy_test\.csv:1: .*no header"):
        mmlu.load(tmp_path)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    for name in ("mmlu", "mmmu", "videomme", "mmbench_video", "mlvu"):
        (root / name).mkdir()
        module(name).write_synthetic(root / name, seed=5, n=3)
    return root


def test_synthetic_releases_are_in_the_official_layouts(releases):
    import csv

    import pandas as pd

    rows = list(csv.reader((releases / "mmlu" / "data" / "test" / "elementary_mathematics_test.csv").open()))
    assert len(rows) == 3 and all(len(r) == 6 and r[5] in "ABCD" for r in rows)
    a, b = (int(x) for x in rows[0][0][len("What is "):-1].split(" + "))
    assert rows[0][1 + "ABCD".index(rows[0][5])] == str(a + b)
    df = pd.read_parquet(releases / "videomme" / "videomme" / "test-00000-of-00001.parquet")
    assert list(df["duration"]) == ["short", "medium", "long"] and all(len(o) == 4 for o in df["options"])
    assert all((releases / "videomme" / "data" / f"{v}.mp4").is_file() for v in df["videoID"])
    mm = pd.read_parquet(releases / "mmmu" / "Synthetic" / "validation-00000-of-00001.parquet")
    assert set(mm["question_type"]) == {"multiple-choice", "open"} and mm["image_1"][0]["bytes"][:4] == b"\x89PNG"
    tsv = (releases / "mmbench_video" / "MMBench-Video.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:5] == ["index", "video", "video_type", "question", "answer"]
    items = [d for p in (releases / "mlvu" / "json").glob("*.json") for d in json.loads(p.read_text())]
    assert len(items) == 3 and all(d["answer"] in d["candidates"] for d in items)


def test_synthetic_answers_come_from_the_clip(releases):
    from univid.data.synthetic import qa_pairs, sample_clip_specs

    for i, s in enumerate(videomme.load(releases / "videomme")):
        spec = sample_clip_specs(5 * 1000 + 100 + i, 1, num_frames=(64, 96, 128)[i % 3])[0]
        truth = {q["question"]: q["answer"] for q in qa_pairs(spec)}
        chosen = s["options"]["ABCD".index(s["answer"])]
        assert chosen == f"{s['answer']}. {truth[s['question']]}"
    for s in mlvu.load(releases / "mlvu"):
        assert s["candidates"]["ABCDEFG".index(s["answer"])] == s["answer_text"]


# ------------------------------------------------------------------------------------------ the suite job

class ScriptedJudge:
    backend_id = "scripted"
    model_id = "scripted-judge"

    def __init__(self):
        self.prompts = []

    def generate(self, prompt, system=None, **decoding):
        self.prompts.append((prompt, system))
        return "2"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """One built system (~10-20 s: the whole smoke model) shared by the job tests; a scripted judge."""
    from univid.config import job_config, resolve
    from univid.reflection import build_reflection

    tmp = tmp_path_factory.mktemp("suite")
    cfg = resolve(overrides={
        "understanding": {"weights": "none", "cache_dir": str(tmp / "pool")},
        "llm": {"cache_path": str(tmp / "llm.sqlite")}, "eval": {"cache_dir": str(tmp / "ev"), "suites": {
            "max_questions": {"mmlu": 1, "mmmu": 1, "videomme": 2, "mmbench_video": 1, "mlvu": 1}}}})
    judge = ScriptedJudge()
    system = build_reflection(cfg, backends={"smollm2-135m": judge})
    return {"cfg": cfg, "job": job_config(cfg, "suite"), "system": system, "judge": judge, "tmp": tmp}


def test_suite_scores_frames_judge_and_zero_call_rerun(suite):
    from univid.data.video import uniform_indices, video_info
    from univid.eval.suites.runner import run_suite

    cfg, system, judge, tmp = suite["cfg"], suite["system"], suite["judge"], suite["tmp"]
    s1 = run_suite(cfg, suite["job"], system, tmp / "run1")
    b = s1["benchmarks"]
    assert set(b) == {"mmlu", "mmmu", "videomme", "mmbench_video", "mlvu"}
    assert [b[n]["frames"] for n in b] == [32, 32, 64, 64, 64]
    assert b["mmbench_video"]["score"] == 2.0 and b["mmbench_video"]["n"] == 1  # the judge's "2"
    assert 0.0 <= b["videomme"]["accuracy"] <= 100.0 and b["videomme"]["n_short_medium"] == 2
    assert judge.prompts and judge.prompts[0][1] == mmbench_video.JUDGE_SYSTEM
    assert judge.prompts[0][0].startswith("Question: ") and judge.prompts[0][0].endswith("\nYour response: ")
    rows = [json.loads(line) for line in (tmp / "run1" / "predictions.jsonl").read_text().splitlines()]
    by = {r["benchmark"]: r for r in rows}
    assert by["mmlu"]["frames_used"] == 0 and by["mmmu"]["frames_used"] == 1
    v = by["videomme"]
    total = video_info(v["sample"]["visual"]["paths"][0])["num_frames"]
    assert v["frames_used"] == 64 and v["frame_indices"] == uniform_indices(total, 64)
    assert s1["counts"]["actor_calls"] == len(rows) == 6 and s1["counts"]["judge_calls"] == 1
    assert s1["metadata"]["extraction"]["videomme"] == videomme.EXTRACTION_ID
    assert s1["judge"]["model"] == "scripted-judge" and s1["label"] == "smoke"
    n_prompts = len(judge.prompts)
    s2 = run_suite(cfg, suite["job"], system, tmp / "run2")
    c = s2["counts"]
    assert c["actor_calls"] == 0 and c["judge_calls"] == 0 and c["vit_passes"] == 0 and c["frames_encoded"] == 0
    assert c["actor_hits"] == 6 and len(judge.prompts) == n_prompts
    assert s2["benchmarks"] == s1["benchmarks"]


def test_univid_evaluate_suite_job_writes_outputs_scores_last(suite, tmp_path, monkeypatch, capsys):
    import univid.reflection
    from univid.cli import main

    monkeypatch.setattr(univid.reflection, "build_reflection", lambda cfg, weights=None: suite["system"])
    out = tmp_path / "job"
    main(["evaluate-suite", "--quiet", "--job-config", json.dumps(suite["job"]), "--out", str(out)])
    assert "Table 10 suites (smoke)" in capsys.readouterr().out
    files = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert set(files) == {"scores.json", "predictions.jsonl", "job_config.json"}
    assert files["scores.json"] >= max(files.values())
    assert json.loads((out / "job_config.json").read_text())["job"] == "suite"
    with pytest.raises(SystemExit):
        main(["evaluate-suite", "--job-config", json.dumps({**suite["job"], "job": "videoqa"}), "--out", str(out)])


def test_config_keys_are_validated():
    from univid.config import ConfigError, resolve

    with pytest.raises(ConfigError):
        resolve(overrides={"eval": {"suites": {"frames": {"mmlu": 0}}}})
    with pytest.raises(ConfigError):
        resolve(overrides={"eval": {"suites": {"benchmarks": ["mme"]}}})
    cfg = resolve(overrides={"eval": {"suites": {"source": "files"}}})
    from univid.eval.suites.runner import release_dir

    with pytest.raises(ValueError, match=r"eval\.suites\.dirs\.mmlu"):
        release_dir("mmlu", cfg["eval"]["suites"], 0, None)
