"""The host's side of every run: what nexlab owns and labels, safe walks of trees it did not make, deferred signals.

Neutral ground: only ``nexlab.errors`` below it, so the builder, the reader and the temporary
base can all use it without import cycles.
"""
