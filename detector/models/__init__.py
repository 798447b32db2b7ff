"""The detector zoo: every architecture behind one registry (`build_model`), the layers registered
for loading a saved run, and the output heads turned into P(fake).

A new detector architecture goes here. May import: `detector.base`.
"""
