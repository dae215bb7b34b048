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
