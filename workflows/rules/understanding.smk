# Understanding benchmarks: Video-QA with Pyramid Reflection (Tables 2, 7-9) and the Table 10 suites.
rule videoqa:
    input: job_inputs("videoqa")
    output: job_outputs("videoqa")
    params: cfg=job_json("videoqa")
    log: f"{R}/logs/videoqa/{{key}}.log"
    resources: **cluster_resources("videoqa")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid evaluate-qa --quiet --job-config {params.cfg:q} > {log} 2>&1"

rule suite:
    input: job_inputs("suite")
    output: job_outputs("suite")
    params: cfg=job_json("suite")
    log: f"{R}/logs/suite/{{key}}.log"
    resources: **cluster_resources("suite")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid evaluate-suite --quiet --job-config {params.cfg:q} > {log} 2>&1"
