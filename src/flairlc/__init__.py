"""flairlc: land-cover semantic segmentation from multi-source optical imagery (IGN FLAIR)."""

__version__ = "0.1.0"
