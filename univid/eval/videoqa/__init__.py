"""Video-QA (paper Tables 2, 7-9), one job per module:

- `datasets`: MSVD-QA, MSRVTT-QA, TGIF-QA FrameQA and ActivityNet-QA loaders in their official release layouts;
- `synthetic`: held-out synthetic releases in those layouts (smoke/toy scale);
- `judge`: the Video-ChatGPT judge protocol (prompts in templates/, verdict parsing, summaries);
- `run`: the `videoqa` job: Pyramid Reflection predictions (resumable), judging, clustered bootstrap CIs.

Nothing heavy is imported here.
"""
