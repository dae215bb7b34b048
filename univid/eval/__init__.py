"""Evaluation, one package per benchmark family:

- `univid.eval.vbench`: VBench(-Long) per-dimension scoring (stand-in scorers in process, or the official vbench
  0.1.5 code in its own environment) and the official aggregation;
- `univid.eval.videoqa`: the Video-QA job (MSVD/MSRVTT/TGIF/ActivityNet-QA loaders, synthetic releases, the
  Video-ChatGPT judge, the run);
- `univid.eval.suites`: paper Table 10's suites (MMLU, MMMU, Video-MME, MMBench-Video, MLVU).

Beside them, what the families share: `cache` (content-keyed score cache), `stats` (clustered bootstrap CIs),
`checks` (video file checks), `results` (provenance recorded with every score).
Nothing heavy is imported here, so that `univid.eval.vbench.aggregate` stays importable without torch.
"""
