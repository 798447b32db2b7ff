"""Images in: decoding and fitting image files (images), real/fake folder layouts and tf.data
pipelines (datasets), training-time augmentation (augment), the embedded SynthFaces set (synthfaces),
face crops (faces), and a look at a folder before training on it (inspect).

A new image source or augmentation goes here. May import: `detector.base`.
"""
