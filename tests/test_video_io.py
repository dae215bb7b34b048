"""Video I/O: mp4 round trip through decord, the PyAV fallback, clear errors, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from univid.data.synthetic import render_clip, sample_clip_specs
from univid.data.video import VideoError, read_video, uniform_indices, video_info, write_video


@pytest.fixture(scope="module")
def clip():
    spec = sample_clip_specs(seed=11, n=1, num_frames=17, height=64, width=64, fps=8.0)[0]
    return render_clip(spec)


@pytest.fixture()
def mp4(tmp_path, clip):
    path = tmp_path / "clip.mp4"
    write_video(path, clip, fps=8.0)
    return path


def test_round_trip_with_decord(mp4, clip):
    v = read_video(mp4)
    assert v.frames.shape == clip.shape
    assert v.frames.dtype == np.uint8
    assert v.fps == pytest.approx(8.0)
    assert v.num_frames_total == 17
    assert v.indices == list(range(17))
    err = np.abs(v.frames.astype(np.int16) - clip.astype(np.int16))
    # High quality: what error is left is chroma subsampling at object edges (mean ~0.3 even lossless);
    # a default-quality encode (crf 23+) breaks the 99th-percentile bound.
    assert err.mean() < 0.6 and np.percentile(err, 99) <= 6


def test_read_selected_indices(mp4):
    full = read_video(mp4).frames
    v = read_video(mp4, indices=[0, 8, 16])
    assert v.indices == [0, 8, 16]
    assert v.num_frames_total == 17
    np.testing.assert_array_equal(v.frames, full[[0, 8, 16]])
    with pytest.raises(VideoError, match="out of range"):
        read_video(mp4, indices=[0, 17])


def test_video_info(mp4):
    info = video_info(mp4)
    assert info == {"num_frames": 17, "fps": pytest.approx(8.0), "width": 64, "height": 64,
                    "duration_s": pytest.approx(17 / 8.0)}


def test_pyav_fallback_when_decord_fails(mp4, clip, monkeypatch):
    import decord

    calls = []

    def broken_reader(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("decord cannot open this file")

    monkeypatch.setattr(decord, "VideoReader", broken_reader)
    v = read_video(mp4, indices=[1, 5])
    assert calls, "decord was not tried first"
    assert v.indices == [1, 5] and v.num_frames_total == 17
    assert v.fps == pytest.approx(8.0)
    assert np.abs(v.frames.astype(np.int16) - clip[[1, 5]].astype(np.int16)).mean() < 2.0
    assert video_info(mp4)["num_frames"] == 17  # info falls back too


def test_unreadable_file_names_the_path(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoError, match="broken.mp4: unreadable video"):
        read_video(bad)
    with pytest.raises(VideoError, match="broken.mp4"):
        video_info(bad)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(VideoError, match=r"nowhere\.mp4: video not found"):
        read_video(tmp_path / "nowhere.mp4")


@pytest.mark.parametrize("frames, msg", [
    (np.zeros((4, 16, 16, 3), np.float32), "expected uint8"),
    (np.zeros((4, 16, 16), np.uint8), "expected uint8"),
    (np.zeros((4, 15, 16, 3), np.uint8), "even height and width"),
    (np.zeros((0, 16, 16, 3), np.uint8), "0 frames"),
])
def test_write_rejects_bad_arrays(tmp_path, frames, msg):
    with pytest.raises(VideoError, match=msg):
        write_video(tmp_path / "x.mp4", frames, fps=8.0)
    assert not (tmp_path / "x.mp4").exists()


def test_failed_write_leaves_no_file(tmp_path, clip, monkeypatch):
    import av

    target = tmp_path / "out.mp4"
    real = av.VideoFrame.from_ndarray
    count = {"n": 0}

    def dies_midway(*args, **kwargs):
        count["n"] += 1
        if count["n"] > 5:
            raise KeyboardInterrupt("killed mid-write")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        write_video(target, clip, fps=8.0)
    assert count["n"] == 6
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary survives


def test_failed_rewrite_keeps_previous_file(mp4, clip, monkeypatch):
    import av

    before = mp4.read_bytes()

    def always_fails(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", always_fails)
    with pytest.raises(RuntimeError):
        write_video(mp4, clip[::-1].copy(), fps=8.0)
    assert mp4.read_bytes() == before
    assert sorted(p.name for p in mp4.parent.iterdir()) == ["clip.mp4"]


def test_uniform_indices():
    assert uniform_indices(17, 4) == [2, 6, 10, 14]
    assert uniform_indices(10, 1) == [5]
    assert uniform_indices(5, 5) == [0, 1, 2, 3, 4]
    assert uniform_indices(3, 8) == [0, 1, 2]
    idx = uniform_indices(1000, 16)
    assert idx == sorted(set(idx)) and len(idx) == 16 and 0 <= idx[0] and idx[-1] < 1000
    with pytest.raises(VideoError, match="expected both positive"):
        uniform_indices(0, 4)

