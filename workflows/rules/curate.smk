rule curate:
    output: job_outputs("curate")
    params: cfg=job_json("curate")
    log: f"{R}/logs/curate/{{key}}.log"
    resources: **cluster_resources("curate")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid curate --quiet --job-config {params.cfg:q} > {log} 2>&1"


# The ti2v track's prompt suite with a reference image per prompt (synthetic first frames, or VBench-I2V's crops).
rule ti2v_suite:
    output: job_outputs("ti2v_suite")
    params: cfg=job_json("ti2v_suite")
    log: f"{R}/logs/ti2v_suite/{{key}}.log"
    resources: **cluster_resources("ti2v_suite")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid ti2v-suite --quiet --job-config {params.cfg:q} > {log} 2>&1"
