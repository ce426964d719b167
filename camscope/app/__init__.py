"""``camscope app``: the interactive explorer. :mod:`camscope.app.session` does the work with the public API
and needs no web framework; :mod:`camscope.app.ui` is the Gradio page (optional extra ``camscope[app]``)."""
