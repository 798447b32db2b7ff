"""Scoring with a trained detector: load a run and predict (predict), threshold on validation and
metrics on test (evaluate, metrics), and what the model looks at (explain).

A new classification metric or scoring path goes here. May import: `detector.models`, `detector.data`,
`detector.base`.
"""
