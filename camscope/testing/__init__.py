"""What the test suite and the scripts that publish figures (``benchmarks/``) share.

Why a package of its own: a published figure and the test that guards it must come from one
computation, and tests never import the scripts. Nothing in the library imports it; its modules may need
the ``test`` extra (the peer library, Playwright), each importing only what its own job needs:
:mod:`~camscope.testing.localization` (maps of the true class and the pointing game on generated scenes),
:mod:`~camscope.testing.readme_block` (the mini zoo's README block), :mod:`~camscope.testing.peers`
(pytorch-grad-cam set up as camscope documents its differences), :mod:`~camscope.testing.browser` (the app
driven in headless Chromium).
"""
