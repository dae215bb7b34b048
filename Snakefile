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

include: "workflows/rules/common.smk"
include: "workflows/rules/curate.smk"
include: "workflows/rules/train.smk"
include: "workflows/rules/generate.smk"
include: "workflows/rules/evaluate.smk"
include: "workflows/rules/report.smk"

rule all:
    input: [f"reports/{t}.tex" for t in PLAN["tables"]]
    default_target: True
