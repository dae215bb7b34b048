# Cheap bookkeeping runs on the submitting host, also under a cluster executor (MLflow writes stay local).
localrules: collect, track, report

MLFLOW = BASE["mlflow"]


rule collect:
    input: lambda w: lineage(w.table)
    output: f"{R}/tables/{{table}}/results.json", f"{R}/tables/{{table}}/results.csv"
    params:
        ablation=lambda w: PLAN["tables"][w.table]["ablation"],
        variants=lambda w: " ".join(f"--variant {n}={d}" for n, d in variant_dirs(w.table).items()),
    shell: "univid collect --table {wildcards.table} --ablation {params.ablation} {params.variants} --out {output[0]}"


rule track:
    input: results=f"{R}/tables/{{table}}/results.json", plots=f"{R}/tables/{{table}}/plots"
    output: f"{R}/tables/{{table}}/mlflow.json"
    params:
        uri=f"--tracking-uri {MLFLOW['tracking_uri']}" if MLFLOW.get("tracking_uri") else "",
        prefix=MLFLOW["experiment_prefix"],
    shell: "univid track --results {input.results} --artifact {input.plots} --out {output} {params.uri} --experiment-prefix {params.prefix}"


# The rendered table is also logged to the table's MLflow parent run (named in mlflow.json).
rule report:
    input:
        results=f"{R}/tables/{{table}}/results.json",
        mlflow=f"{R}/tables/{{table}}/mlflow.json",
        template="reports/templates/{table}.tex.j2",
    output: report("reports/{table}.tex", category="Tables", labels={"table": "{table}"})
    shell: "univid report --results {input.results} --mlflow {input.mlflow} --out {output}"
