"""QGIS style files (``.qml``) for class maps: a paletted renderer with class names and colours."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from flairlc import nomenclature
from flairlc.outputs import write_text


def write_qml(map_path: str | Path, nomenclature_name: nomenclature.NomenclatureSpec = "baseline") -> Path:
    """Write ``MAP.qml`` beside ``MAP.tif``: a paletted style naming and colouring each class.

    Args:
        map_path: path of the class map (the style takes its stem).
        nomenclature_name: ``"baseline"`` (13 classes), ``"raw"`` (19), ``"cosia"`` or any
            :func:`flairlc.nomenclature.get` spec (a checkpoint's own classes).

    Returns:
        the path of the style file, written atomically.
    """
    map_path = Path(map_path)
    entries = "\n".join(
        f"        <paletteEntry value=\"{c.index}\" color=\"{c.color}\" alpha=\"255\" "
        f"label={quoteattr(c.name)}/>"
        for c in nomenclature.classes(nomenclature_name)
    )
    text = f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
    return write_text(map_path.with_suffix(".qml"), text)
