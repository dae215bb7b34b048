# Helpers shared by the rules: job configs by (job, key), and the upstream files a job reads.
import json
from pathlib import Path
from univid.workflow import JOB_OUTPUTS, job_input_files

JOBS_BY_KEY = {(j["job"], j["key"]): j for j in PLAN["jobs"].values()}
wildcard_constraints:
    key="[0-9a-f]{12}"


def job(name, key):
    try:
        return JOBS_BY_KEY[(name, key)]
    except KeyError:
        raise ValueError(f"no {name} job with key {key} in the current plan (expected a key of workflows/config.yaml's tables)")


def cluster_resources(name):
    """The rule's resources at this scale (config cluster.resources: gpu, mem_mb, runtime, cpus_per_task); what the
    SLURM executor turns into --gpus, --mem, --time and --cpus-per-task. CPU-only rules name no gpu."""
    return dict(BASE.get("cluster", {}).get("resources", {}).get(name, {}))


def job_json(name):
    return lambda w: json.dumps(job(name, w.key), sort_keys=True)


def job_outputs(name):
    return [f"{R}/{name}/{{key}}/{f}" for f in JOB_OUTPUTS[name]]


def job_inputs(name):
    return lambda w: job_input_files(job(name, w.key))


def variant_dirs(table):
    """variant name -> the directory of the job its row reads (evaluate, videoqa or suite)."""
    return {v["name"]: v["target"]["dir"] for v in PLAN["tables"][table]["variants"]}


def lineage(table):
    """Every output of every job behind a table: the table depends on its whole lineage, not only on the scores."""
    files = []
    for v in PLAN["tables"][table]["variants"]:
        for name, j in v["jobs"].items():
            files += [f"{j['dir']}/{f}" for f in JOB_OUTPUTS[name]]
    return sorted(set(files))


# A deleted intermediate (say one variant's stage-I weights) must be rebuilt with exactly the jobs downstream of it.
# Snakemake skips a missing intermediate when its consumers look up to date (snakemake#1978), so such "lineage
# holes" are added to --forcerun just before the DAG is built (DAG settings do not exist yet while this file is read).
import dataclasses as _dc
from univid.workflow import lineage_holes as _lineage_holes

_HOLES = frozenset(_lineage_holes(PLAN["jobs"])) if not workflow.remote_exec else frozenset()


def _requested_holes(targets):
    """Only the holes behind the requested tables (reports/tableN.tex); any other target may need every table."""
    tables = set()
    for t in targets or ["reports/all"]:
        name = Path(str(t)).name
        if name.endswith(".tex") and name[:-4] in PLAN["tables"]:
            tables.add(name[:-4])
        else:
            return _HOLES
    dirs = {j["dir"] for t in tables for v in PLAN["tables"][t]["variants"] for j in v["jobs"].values()}
    return frozenset(h for h in _HOLES if str(Path(h).parent) in dirs)  # a hole is its job's first output file


if _HOLES:
    _execute = workflow.execute

    def _execute_with_holes_forced(*args, **kwargs):
        ds = workflow.dag_settings
        workflow.dag_settings = _dc.replace(ds, forcerun=frozenset(ds.forcerun) | _requested_holes(ds.targets))
        return _execute(*args, **kwargs)

    workflow.execute = _execute_with_holes_forced
