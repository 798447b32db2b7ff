"""Applications on top of the detector and the GAN: the quickstart, the upload web page, the video tool."""
