"""Measures of generated images that know nothing of runs or detectors: FID and KID with InceptionV3
features, 95% intervals, diversity, power spectra, and the face-found test.

A new image-quality measure or interval goes here. May import: `detector` only.
"""
