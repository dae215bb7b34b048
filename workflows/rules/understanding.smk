# Understanding benchmarks: Video-QA with Pyramid Reflection (Tables 2, 7-9) and the Table 10 suites.
# shards.videoqa = 1: one job answers, judges and scores. N > 1: N shard jobs each answer every N-th question, then
# `videoqa` merges their predictions and judges and scores them (as one job would).
VIDEOQA_SHARDS = int(BASE.get("shards", {}).get("videoqa", 1))


def videoqa_shard_files(w):
    return job_inputs("videoqa")(w) + [f"{R}/videoqa/{w.key}/shards/{i}-of-{VIDEOQA_SHARDS}.jsonl"
                                       for i in range(VIDEOQA_SHARDS)]


if VIDEOQA_SHARDS == 1:
    rule videoqa:
        input: job_inputs("videoqa")
        output: job_outputs("videoqa")
        params: cfg=job_json("videoqa")
        log: f"{R}/logs/videoqa/{{key}}.log"
        resources: **cluster_resources("videoqa")
        threads: 1
        shell: "OMP_NUM_THREADS={threads} univid evaluate-qa --quiet --job-config {params.cfg:q} > {log} 2>&1"
else:
    rule videoqa_shard:
        input: job_inputs("videoqa")
        output: f"{R}/videoqa/{{key}}/shards/{{shard}}-of-{VIDEOQA_SHARDS}.jsonl"
        params: cfg=job_json("videoqa"), shards=VIDEOQA_SHARDS
        log: f"{R}/logs/videoqa/{{key}}.{{shard}}-of-{VIDEOQA_SHARDS}.log"
        wildcard_constraints: shard="[0-9]+"
        resources: **cluster_resources("videoqa")
        threads: 1
        shell: "OMP_NUM_THREADS={threads} univid evaluate-qa --quiet --shard {wildcards.shard} --shards {params.shards} --job-config {params.cfg:q} > {log} 2>&1"

    rule videoqa:
        input: videoqa_shard_files
        output: job_outputs("videoqa")
        params: cfg=job_json("videoqa"), shards=VIDEOQA_SHARDS
        log: f"{R}/logs/videoqa/{{key}}.log"
        resources: **cluster_resources("videoqa")
        threads: 1
        shell: "OMP_NUM_THREADS={threads} univid evaluate-qa --quiet --gather {params.shards} --job-config {params.cfg:q} > {log} 2>&1"

rule suite:
    input: job_inputs("suite")
    output: job_outputs("suite")
    params: cfg=job_json("suite")
    log: f"{R}/logs/suite/{{key}}.log"
    resources: **cluster_resources("suite")
    threads: 1
    shell: "OMP_NUM_THREADS={threads} univid evaluate-suite --quiet --job-config {params.cfg:q} > {log} 2>&1"
