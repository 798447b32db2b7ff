"""What every stage of the detector stands on: the one error type for bad input, what the lab prints
(console), numbered run directories with atomic writes (runs), and the named crash points those writes
pass through (failpoints).

May import: nothing of the lab but the `detector` package constants.
"""
