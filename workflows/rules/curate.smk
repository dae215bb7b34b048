rule curate:
    output: job_outputs("curate")
    params: cfg=job_json("curate")
    log: f"{R}/logs/curate/{{key}}.log"
    resources: **cluster_resources("curate")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid curate --quiet --job-config {params.cfg:q} > {log} 2>&1"
