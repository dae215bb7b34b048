rule generate:
    input: job_inputs("generate")
    output: job_outputs("generate")
    params: cfg=job_json("generate")
    log: f"{R}/logs/generate/{{key}}.log"
    resources: **cluster_resources("generate")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid generate-suite --quiet --job-config {params.cfg:q} > {log} 2>&1"
