# Toy scale: the "public checkpoints" (VAE, T2V DiT + UMT5, MLLM) pretrained on the synthetic world, shared by every
# table (pretrain.enabled; `{pretrain}` in a model path names this job's output).
rule pretrain:
    output: job_outputs("pretrain")
    params: cfg=job_json("pretrain")
    log: f"{R}/logs/pretrain/{{key}}.log"
    resources: **cluster_resources("pretrain")
    threads: 2
    shell: "OMP_NUM_THREADS={threads} univid pretrain --quiet --job-config {params.cfg:q} > {log} 2>&1"

# The frozen parts' outputs (VAE latents, MLLM or UMT5 caption states) as shards, once for every variant that agrees on
# them: all five TMA schedules of Table 4 read one precompute job.
rule precompute:
    input: job_inputs("precompute")
    output: job_outputs("precompute")
    params: cfg=job_json("precompute")
    log: f"{R}/logs/precompute/{{key}}.log"
    resources: **cluster_resources("precompute")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid precompute --quiet --job-config {params.cfg:q} > {log} 2>&1"

rule stage1:
    input: job_inputs("stage1")
    output: job_outputs("stage1")
    params: cfg=job_json("stage1")
    log: f"{R}/logs/stage1/{{key}}.log"
    resources: **cluster_resources("stage1")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid train --stage 1 --quiet --job-config {params.cfg:q} > {log} 2>&1"

# Stage II reads no TMA setting, so every TMA variant maps to the same key and shares this job.
rule stage2:
    input: job_inputs("stage2")
    output: job_outputs("stage2")
    params: cfg=job_json("stage2")
    log: f"{R}/logs/stage2/{{key}}.log"
    resources: **cluster_resources("stage2")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid train --stage 2 --quiet --job-config {params.cfg:q} > {log} 2>&1"

rule stage3:
    input: job_inputs("stage3")
    output: job_outputs("stage3")
    params: cfg=job_json("stage3")
    log: f"{R}/logs/stage3/{{key}}.log"
    resources: **cluster_resources("stage3")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid train --stage 3 --quiet --job-config {params.cfg:q} > {log} 2>&1"
