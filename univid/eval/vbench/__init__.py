"""VBench(-Long) for generated videos, one job per module:

- `constants`: the 16 dimensions, their Quality/Semantic split and normalisation bounds;
- `aggregate`: VBench's cal_final_score (Total/Quality/Semantic from 16 raw scores);
- `long`: VBench-Long clip splitting, scene detection and pooling (tables in long_tables.json);
- `scorers`: the per-dimension scorers (official formulas, named offline stand-in models at smoke scale);
- `suite`: what both backends share (prompt-suite checks, video names, cache keys, pooling as VBench pools);
- `standin`: scoring in process with the scorers; `official`: vbench 0.1.5 in .venv-vbench through
  `official_driver.py` (univid-free); `weights`: the official weights manifest (fetch/verify);
- `scoring`: a generate job's folder -> checks -> the configured backend -> scores.json.

Nothing heavy is imported here.
"""
