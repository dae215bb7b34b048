rule evaluate:
    input: job_inputs("evaluate")
    output: job_outputs("evaluate")
    params: cfg=job_json("evaluate")
    log: f"{R}/logs/evaluate/{{key}}.log"
    resources: **cluster_resources("evaluate")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid evaluate --quiet --job-config {params.cfg:q} > {log} 2>&1"
