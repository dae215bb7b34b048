# shards.generate = 1: one job generates the whole prompt suite. N > 1: N shard jobs, each every N-th video (the
# files and seeds one job would write), then `generate` gathers their lists into manifest.json.
GENERATE_SHARDS = int(BASE.get("shards", {}).get("generate", 1))


def generate_shard_lists(w):
    return job_inputs("generate")(w) + [f"{R}/generate/{w.key}/shards/{i}-of-{GENERATE_SHARDS}.json"
                                        for i in range(GENERATE_SHARDS)]


if GENERATE_SHARDS == 1:
    rule generate:
        input: job_inputs("generate")
        output: job_outputs("generate")
        params: cfg=job_json("generate")
        log: f"{R}/logs/generate/{{key}}.log"
        resources: **cluster_resources("generate")
        threads: 1
        shell: "OMP_NUM_THREADS={threads} univid generate-suite --quiet --job-config {params.cfg:q} > {log} 2>&1"
else:
    rule generate_shard:
        input: job_inputs("generate")
        output: f"{R}/generate/{{key}}/shards/{{shard}}-of-{GENERATE_SHARDS}.json"
        log: f"{R}/logs/generate/{{key}}.{{shard}}-of-{GENERATE_SHARDS}.log"
        wildcard_constraints: shard="[0-9]+"
        resources: **cluster_resources("generate")
        threads: 1
        params: cfg=job_json("generate"), shards=GENERATE_SHARDS
        shell: "OMP_NUM_THREADS={threads} univid generate-suite --quiet --shard {wildcards.shard} --shards {params.shards} --job-config {params.cfg:q} > {log} 2>&1"

    rule generate:
        input: generate_shard_lists
        output: job_outputs("generate")
        params: cfg=job_json("generate"), shards=GENERATE_SHARDS
        log: f"{R}/logs/generate/{{key}}.log"
        localrule: True
        shell: "univid generate-suite --quiet --gather {params.shards} --job-config {params.cfg:q} > {log} 2>&1"
