"""Evaluation: VBench per-dimension scoring (official formulas, named stand-ins at smoke scale) and aggregation.

Nothing heavy is imported here, so that `univid.eval.vbench_aggregate` stays importable without torch.
"""
