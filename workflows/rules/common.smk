# Helpers shared by the rules: job configs by (job, key), and the upstream files a job reads.
import json
from univid.workflow import JOB_INPUTS, JOB_OUTPUTS

JOBS_BY_KEY = {(j["job"], j["key"]): j for j in PLAN["jobs"].values()}
wildcard_constraints:
    key="[0-9a-f]{12}"


def job(name, key):
    try:
        return JOBS_BY_KEY[(name, key)]
    except KeyError:
        raise ValueError(f"no {name} job with key {key} in the current plan (expected a key of workflows/config.yaml's tables)")


def job_json(name):
    return lambda w: json.dumps(job(name, w.key), sort_keys=True)


def job_outputs(name):
    return [f"{R}/{name}/{{key}}/{f}" for f in JOB_OUTPUTS[name]]


def job_inputs(name):
    def inputs(w):
        j = job(name, w.key)
        return [f"{j['upstream_dirs'][up]}/{f}" for up, files in JOB_INPUTS[name].items() for f in files]
    return inputs


def variant_dirs(table, job_name):
    return {v["name"]: v["jobs"][job_name]["dir"] for v in PLAN["tables"][table]["variants"]}


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
if _HOLES:
    _execute = workflow.execute

    def _execute_with_holes_forced(*args, **kwargs):
        ds = workflow.dag_settings
        workflow.dag_settings = _dc.replace(ds, forcerun=frozenset(ds.forcerun) | _HOLES)
        return _execute(*args, **kwargs)

    workflow.execute = _execute_with_holes_forced
