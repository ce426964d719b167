"""The engine every method, metric and entry point builds on.

Hooks and activation capture (:mod:`~camscope.core.capture`), what a map explains
(:mod:`~camscope.core.targets`), layer names (:mod:`~camscope.core.layer_paths`), name tables
(:mod:`~camscope.core.registry`), progress and cancellation (:mod:`~camscope.core.progress`), device
choice (:mod:`~camscope.core.devices`) and user-facing errors (:mod:`~camscope.core.errors`). Nothing here
imports from the rest of the package.
"""
