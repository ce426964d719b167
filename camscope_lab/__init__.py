"""The training lab: how the mini zoo is trained (``camscope train-mini``).

Kept apart from the library on purpose: ``import camscope`` never imports this package, so the DINO /
MoCo v3 / augmentation code and timm's training paths stay off a user's import path, and training never
writes into the installed package (a run writes under the runs folder it is given; :mod:`camscope_lab.ship`
copies a finished model into a source checkout's zoo). The models themselves — architectures, specs,
recipes, shipped weights — are ordinary zoo entries in :mod:`camscope.models.mini`; this package only
produces their weights and records.

One module per job: :mod:`~camscope_lab.config` (recipes as configs), :mod:`~camscope_lab.loop` (the
optimisation loop and checkpoints), :mod:`~camscope_lab.probe` (the linear probe), :mod:`~camscope_lab.records`
(the record beside the weights), :mod:`~camscope_lab.train` (one run, start to record); the methods
(:mod:`~camscope_lab.dino`, :mod:`~camscope_lab.moco`) and their data and views beside them. Recipe
experiments are scripts in ``camscope_lab/experiments/`` (``python -m camscope_lab.experiments.NAME``).
"""
