"""`univid track` against a real `mlflow server` over HTTP (how concurrent cluster jobs log), checked through the
server's REST API: one parent run per table with one child per variant, their metrics, CI and ids, the artifacts; a
second `univid track` of the same results adds nothing; `univid compare` reads the same runs back.

Slow-ish: `mlflow server` needs ~10-25 s to start on a busy 2-core machine (two interpreters import mlflow and
create the database schema); everything else takes a few seconds."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
MLFLOW = Path(sys.executable).parent / "mlflow"
PROV = {"git": {"commit": "0123456789abcdef0123", "dirty": False}, "packages": {"mlflow": "x"}, "python": "3.11"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    # Job execution off: otherwise the server forks seven huey consumers that nothing here uses.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", OMP_NUM_THREADS="1")
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp / "artifacts")],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import mlflow.tracking  # noqa: F401  (imported while the server boots: the tests need it next)
    import univid.cli  # noqa: F401

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer /health within 120 s"
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its uvicorn worker
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _api(url: str, endpoint: str, body: dict | None = None, **query) -> dict:
    full = f"{url}/api/2.0/mlflow/{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _search(url: str, exp_id: str, filter_string: str = "") -> list[dict]:
    return _api(url, "runs/search", {"experiment_ids": [exp_id], "filter": filter_string,
                                     "max_results": 100}).get("runs", [])


def _tags(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _metrics(run: dict) -> dict:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


@pytest.fixture(scope="module")
def logged(server, tmp_path_factory):
    from univid.cli import main

    tmp = tmp_path_factory.mktemp("table")
    rows = []
    for i, variant in enumerate(("no_reflection", "static", "full")):
        scores = tmp / variant / "scores.json"
        scores.parent.mkdir()
        scores.write_text("{}")
        rows.append({"variant": variant, "label": f"UniVid ({variant})", "kind": "videoqa", "seed": 0,
                     "scale": "smoke", "config_hash": f"{i:012x}", "job_keys": {"videoqa": f"{i:012x}"},
                     "backends": {"judge": "smollm2-135m@local", "role.actor": "univid-smoke"},
                     "scores_path": str(scores),
                     "config": {"understanding": {"reflection": i > 0, "max_rounds": 3}},
                     "scores": {"msvd_qa.accuracy": 40.0 + i, "msvd_qa.score": 2.5, "tgif_frameqa.accuracy": None},
                     "ci": {"msvd_qa.accuracy": [35.0 + i, 45.0 + i]},
                     "ids": {"judge": {"backend": "local", "model": "smollm2-135m"}, "actor": "univid-smoke"}})
    results = tmp / "results.json"
    results.write_text(json.dumps({"table": "table7", "ablation": "reflection", "title": "t", "scale": "smoke",
                                   "kind": "videoqa", "rows": rows, "provenance": PROV}))
    (tmp / "table7.tex").write_text("\\begin{table}\\end{table}\n")
    (tmp / "plots").mkdir()
    (tmp / "plots" / "benchmarks.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    args = ["track", "--results", str(results), "--out", str(tmp / "mlflow.json"), "--tracking-uri", server,
            "--experiment-prefix", "test", "--artifact", str(tmp / "table7.tex"), "--artifact", str(tmp / "plots")]
    main(args)
    first = json.loads((tmp / "mlflow.json").read_text())
    main(args)  # the same results again: finds the runs, creates none
    second = json.loads((tmp / "mlflow.json").read_text())
    exp = _api(server, "experiments/get-by-name", experiment_name="test-table7")["experiment"]
    return exp["experiment_id"], first, second


def test_parent_run_holds_one_child_per_variant_with_metrics(server, logged):
    exp_id, first, _ = logged
    runs = _search(server, exp_id)
    parents = [r for r in runs if _tags(r).get("univid.role") == "parent"]
    assert len(parents) == 1 and len(runs) == 4
    parent = parents[0]
    assert parent["info"]["run_id"] == first["parent"]["run_id"]
    assert parent["info"]["run_name"] == "table7 @ 01234567" and parent["info"]["status"] == "FINISHED"
    children = _search(server, exp_id, f"tags.`mlflow.parentRunId` = '{parent['info']['run_id']}'")
    by_variant = {_tags(c)["univid.variant"]: c for c in children}
    assert sorted(by_variant) == ["full", "no_reflection", "static"]
    for i, variant in enumerate(("no_reflection", "static", "full")):
        child = by_variant[variant]
        assert _metrics(child) == {"msvd_qa.accuracy": 40.0 + i, "msvd_qa.score": 2.5,
                                   "msvd_qa.accuracy.ci_lo": 35.0 + i, "msvd_qa.accuracy.ci_hi": 45.0 + i}
        tags = _tags(child)
        assert tags["mlflow.source.git.commit"] == PROV["git"]["commit"] and tags["univid.scale"] == "smoke"
        assert tags["univid.config_hash"] == f"{i:012x}" and tags["univid.kind"] == "videoqa"
        assert json.loads(tags["univid.ids.judge"]) == {"backend": "local", "model": "smollm2-135m"}
        assert tags["univid.ids.actor"] == "univid-smoke"
        assert tags["univid.backend.judge"] == "smollm2-135m@local"
        assert tags["univid.backend.role.actor"] == "univid-smoke"
        params = {p["key"]: p["value"] for p in child["data"]["params"]}
        assert params == {"understanding.reflection": str(i > 0), "understanding.max_rounds": "3"}


def test_artifacts_go_to_the_parent_through_the_server(server, logged):
    _, first, _ = logged
    listed = _api(server, "artifacts/list", run_id=first["parent"]["run_id"])
    assert {f["path"] for f in listed["files"]} == {"results.json", "table7.tex", "plots"}
    plots = _api(server, "artifacts/list", run_id=first["parent"]["run_id"], path="plots")
    assert [f["path"] for f in plots["files"]] == ["plots/benchmarks.png"]
    child = _api(server, "artifacts/list", run_id=first["runs"][0]["run_id"])
    assert [f["path"] for f in child["files"]] == ["scores.json"]


def test_tracking_the_same_results_again_creates_nothing(logged):
    _, first, second = logged
    assert second == first


def test_compare_prints_the_children_of_the_newest_parent(server, logged):
    import mlflow

    from univid.commands.reproduce import compare_frame

    previous = mlflow.get_tracking_uri()
    try:
        header, frame = compare_frame(server, "7", prefix="test")
    finally:
        mlflow.set_tracking_uri(previous)
    assert "table7 (smoke scale)" in header and "table7 @ 01234567" in header
    assert list(frame.columns) == ["msvd_qa.accuracy", "msvd_qa.score"]
    assert frame.loc["UniVid (static)", "msvd_qa.accuracy"] == "41.00 [36.00, 46.00]"
    assert frame.loc["UniVid (full)", "msvd_qa.score"] == "2.50"
