# UniVid harness workflow. Targets: reports/table1.tex ... reports/table10.tex, and reports/all (every table).
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

report: "workflows/report/workflow.rst"   # snakemake --report reports/report.html: tables, figures, provenance

include: "workflows/rules/common.smk"
include: "workflows/rules/plots.smk"
include: "workflows/rules/curate.smk"
include: "workflows/rules/train.smk"
include: "workflows/rules/generate.smk"
include: "workflows/rules/evaluate.smk"
include: "workflows/rules/understanding.smk"
include: "workflows/rules/report.smk"

rule all:
    input: "reports/all"
    default_target: True


# reports/all: every configured table, and a manifest of what was rendered (sha256 per table).
rule all_tables:
    input: [f"reports/{t}.tex" for t in PLAN["tables"]]
    output: "reports/all"
    localrule: True
    shell: "sha256sum {input} > {output}"
