"""Named training recipes and the augmentation ranges they set (no TensorFlow here: the command line reads them).

A recipe is a set of option values applied to each option still at its default, so an option
given beside the recipe wins.
"""

BLUR_SIGMA_RANGE = (0.5, 1.5)
JPEG_QUALITY_RANGE = (30, 90)
RECIPES = {
    "none": {},
    # CNNDetection's Blur+JPEG (0.5) (Wang et al., 2020): each training image blurred with probability
    # 0.5, sigma uniform in [0, 3] (from 0.1: a Gaussian needs sigma > 0), and apart re-compressed with
    # probability 0.5, quality uniform in [30, 100].
    "robust": {"blur_probability": 0.5, "jpeg_probability": 0.5, "blur_sigma": (0.1, 3.0), "jpeg_quality": (30, 100)},
}
