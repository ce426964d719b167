"""``pytorch_grad_cam.feature_factorization`` under camscope's name.

Deep Feature Factorization (:mod:`camscope.methods.factorization`).
"""
