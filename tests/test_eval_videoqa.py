"""Video-QA loaders in the official layouts; a missing file is one line naming it."""

import json

import pytest

from univid.data.formats import write_activitynet_qa
from univid.eval.videoqa.datasets import load


def test_msvd_qa(tmp_path):
    (tmp_path / "test_qa.json").write_text(json.dumps(
        [{"answer": "dog", "id": 7, "question": "what is running?", "video_id": 3}]))
    (tmp_path / "youtube_mapping.txt").write_text("-4wsuPCjDBc_5_15 vid3\nabc_1_2 vid4\n")
    [s] = load("msvd_qa", tmp_path)
    assert s == {"question_id": "msvd_7", "video": "-4wsuPCjDBc_5_15", "question": "what is running?",
                 "answer": "dog", "video_path": str(tmp_path / "YouTubeClips" / "-4wsuPCjDBc_5_15.avi")}
    (tmp_path / "youtube_mapping.txt").write_text("abc_1_2 vid4\n")
    with pytest.raises(ValueError, match="no clip name for video_id 3"):
        load("msvd_qa", tmp_path)
    (tmp_path / "youtube_mapping.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"youtube_mapping\.txt: MSVD-QA file not found"):
        load("msvd_qa", tmp_path)


def test_msrvtt_qa(tmp_path):
    (tmp_path / "test_qa.json").write_text(json.dumps(
        [{"answer": "man", "category_id": 0, "id": 1, "question": "who talks?", "video_id": 7010}]))
    [s] = load("msrvtt_qa", tmp_path)
    assert s["video"] == "video7010" and s["video_path"].endswith("video/video7010.mp4") and s["type"] == 0
    with pytest.raises(FileNotFoundError, match=r"val_qa\.json: MSRVTT-QA file not found"):
        load("msrvtt_qa", tmp_path, "val")


def test_tgif_frameqa(tmp_path):
    rows = ["gif_name\tquestion\tanswer\tvid_id\tkey\ttype",
            "tumblr_abc\twhat is the color of the cat ?\twhite\tgif_1\t100\t2"]
    (tmp_path / "Test_frameqa_question.csv").write_text("\n".join(rows) + "\n")
    [s] = load("tgif_frameqa", tmp_path)
    assert (s["video"], s["answer"], s["type"]) == ("tumblr_abc", "white", 2)
    assert s["video_path"].endswith("gifs/tumblr_abc.gif")
    (tmp_path / "Test_frameqa_question.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="expected tab-separated gif_name"):
        load("tgif_frameqa", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Train_frameqa_question\.csv: TGIF-QA file not found"):
        load("tgif_frameqa", tmp_path, "train")


def test_activitynet_qa_and_unknown(tmp_path):
    write_activitynet_qa(tmp_path, "test", [{"question_id": "v_1_0", "video_name": "v_1", "question": "q?",
                                             "answer": "yes", "type": 3}])
    [s] = load("activitynet_qa", tmp_path, video_dir=tmp_path / "vids")
    assert (s["video"], s["answer"], s["type"]) == ("v_1", "yes", 3)
    (tmp_path / "test_a.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_a\.json"):
        load("activitynet_qa", tmp_path)
    with pytest.raises(ValueError, match="unknown"):
        load("nextqa", tmp_path)
