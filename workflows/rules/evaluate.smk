# shards.evaluate = 1: one job scores every VBench dimension. N > 1: N shard jobs, each every N-th dimension (16: one
# job per dimension, loading only that dimension's models), then `evaluate` pools them into scores.json.
EVALUATE_SHARDS = int(BASE.get("shards", {}).get("evaluate", 1))


def evaluate_shard_results(w):
    return job_inputs("evaluate")(w) + [f"{R}/evaluate/{w.key}/shards/{i}-of-{EVALUATE_SHARDS}.json"
                                        for i in range(EVALUATE_SHARDS)]


if EVALUATE_SHARDS == 1:
    rule evaluate:
        input: job_inputs("evaluate")
        output: job_outputs("evaluate")
        params: cfg=job_json("evaluate")
        log: f"{R}/logs/evaluate/{{key}}.log"
        resources: **cluster_resources("evaluate")
        threads: 1
        shell: "OMP_NUM_THREADS={threads} univid evaluate --quiet --job-config {params.cfg:q} > {log} 2>&1"
else:
    rule evaluate_shard:
        input: job_inputs("evaluate")
        output: f"{R}/evaluate/{{key}}/shards/{{shard}}-of-{EVALUATE_SHARDS}.json"
        log: f"{R}/logs/evaluate/{{key}}.{{shard}}-of-{EVALUATE_SHARDS}.log"
        wildcard_constraints: shard="[0-9]+"
        resources: **cluster_resources("evaluate")
        threads: 1
        params: cfg=job_json("evaluate"), shards=EVALUATE_SHARDS
        shell: "OMP_NUM_THREADS={threads} univid evaluate --quiet --shard {wildcards.shard} --shards {params.shards} --job-config {params.cfg:q} > {log} 2>&1"

    rule evaluate:
        input: evaluate_shard_results
        output: job_outputs("evaluate")
        params: cfg=job_json("evaluate"), shards=EVALUATE_SHARDS
        log: f"{R}/logs/evaluate/{{key}}.log"
        localrule: True
        shell: "univid evaluate --quiet --gather {params.shards} --job-config {params.cfg:q} > {log} 2>&1"
