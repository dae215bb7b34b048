# UniVid harness workflow. Targets: reports/table4.tex (and, as tables are added, reports/tableN.tex).
#   snakemake --cores all reports/table4.tex
# Every rule is a thin call of `univid <verb>`; the plan (which jobs exist, which config each one runs) comes from
# univid.workflow, and every job's outputs live in a directory named by the hash of the config it reads.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "workflows/config.yaml"

from univid.workflow import plan as _plan

PLAN = _plan(config, root=workflow.basedir)   # one-line ConfigError naming the key, before any job runs
validate(config, "workflows/schemas/config.schema.yaml")
BASE = PLAN["config"]
R = f"{BASE['results_dir']}/{BASE['scale']}"

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

include: "workflows/rules/common.smk"
include: "workflows/rules/curate.smk"
include: "workflows/rules/train.smk"
include: "workflows/rules/generate.smk"
include: "workflows/rules/evaluate.smk"
include: "workflows/rules/report.smk"

rule all:
    input: [f"reports/{t}.tex" for t in PLAN["tables"]]
    default_target: True
