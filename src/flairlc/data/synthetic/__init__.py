"""Synthetic FLAIR #2 data: procedural land-cover scenes written in the real on-disk layout.

- :func:`generate_dataset` writes aerial patches, masks, Sentinel-2 super-areas and the two root
  JSON files exactly as ``shared/spec/flair-format.md`` describes.
- :func:`generate_orthophoto` writes a larger territory over several years (aerial, elevation,
  truth and a Sentinel-2 series per year) for the mapping stage.
"""

from flairlc.data.synthetic.dataset import SyntheticSummary, generate_dataset
from flairlc.data.synthetic.orthophoto import OrthophotoYear, generate_orthophoto

__all__ = ["OrthophotoYear", "SyntheticSummary", "generate_dataset", "generate_orthophoto"]
