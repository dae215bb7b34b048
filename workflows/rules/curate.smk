rule curate:
    output: job_outputs("curate")
    params: cfg=job_json("curate")
    log: f"{R}/logs/curate/{{key}}.log"
    shell: "univid curate --quiet --job-config {params.cfg:q} > {log} 2>&1"
