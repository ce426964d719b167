"""Recipe experiments of the training lab: scripts, each run as ``python -m camscope_lab.experiments.NAME``.

They measure what a recipe choice does (loss curves, probe sizes, feature rank, step time); their results
and the recipes they led to are written up in ``benchmarks/results/mini_recipes.md``.
"""
