"""One preview picture per series: its middle slice, windowed as the header suggests.

Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) decode through pylibjpeg and its
plugins. Only one frame is decoded, read straight from storage, so a multi-frame file of
hundreds of MB costs one frame of memory.
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import uuid
import warnings
from typing import Any, BinaryIO

import numpy as np
import pydicom
from django.core.cache import cache
from django.db import transaction
from PIL import Image
from pydicom.pixels import pixel_array

from imaging.instance_files import StoredImage, instance_file_open
from imaging.models import Series
from storage.tenant import tenant_storage
from tenants.schema import current_schema_name

logger = logging.getLogger(__name__)

PREVIEW_SIZE = 512
# Series that grow (one upload per file) are previewed once they have been quiet this long.
PREVIEW_DEBOUNCE_SECONDS = 5


def _number(value: Any) -> float | None:
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def frame_to_png(ds: pydicom.Dataset, frame: np.ndarray) -> bytes:
    """A PNG of one decoded frame: rescaled to real values, windowed, at most 512 px a side."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if frame.ndim == 3 and frame.shape[-1] in (3, 4):
        rgb = frame[..., :3].astype(np.float32)
        top = float(rgb.max()) or 1.0
        scale = 255.0 / top if top > 255 else 1.0
        image = Image.fromarray(np.clip(rgb * scale, 0, 255).astype(np.uint8), mode="RGB")
    else:
        values = frame.astype(np.float32)
        slope = _number(ds.get("RescaleSlope")) or 1.0
        intercept = _number(ds.get("RescaleIntercept")) or 0.0
        values = values * slope + intercept
        center = _number(ds.get("WindowCenter"))
        width = _number(ds.get("WindowWidth"))
        if center is not None and width is not None and width > 1:
            low, high = center - width / 2, center + width / 2
        else:
            # No window in the header: use the pixel range, minus the extreme outliers.
            low, high = (float(v) for v in np.percentile(values, (0.5, 99.5)))
            if high <= low:
                low, high = float(values.min()), float(values.max()) + 1.0
        scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
        if photometric == "MONOCHROME1":
            scaled = 255.0 - scaled
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def instance_preview_png(*, instance: StoredImage, frame_index: int = 0) -> bytes:
    """Decode one frame of a stored instance and draw it; raises whatever decoding raises."""
    with (
        instance_file_open(instance) as reader,
        tempfile.TemporaryFile() as scratch,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        source: BinaryIO = reader
        if not reader.seekable():  # object storage streams: pydicom needs to seek
            shutil.copyfileobj(reader, scratch, 1024 * 1024)
            source = scratch
        source.seek(0)
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        source.seek(0)
        frame = pixel_array(source, index=frame_index)
    return frame_to_png(ds, frame)


def series_preview_ensure(*, series_id: int) -> str:
    """Draw the preview of a series if it has none or the series grew since; return its key.

    Idempotent: a series previewed at its current instance count is left alone. A series whose
    middle image cannot be decoded keeps no preview (and is not retried until it grows).
    """
    series = Series.objects.select_related("study__case").filter(pk=series_id).first()
    if series is None or series.instance_count == 0:
        return ""
    if series.preview_key and series.preview_instance_count == series.instance_count:
        return series.preview_key
    count = series.instance_count
    instances = list(
        # With the series' id: a related manager reads it from each row (a query per row if deferred).
        series.instances.order_by("instance_number", "slice_location", "id").only(
            "series", "storage_key", "storage_offset", "size", "number_of_frames"
        )
    )
    if not instances:
        return ""
    middle = instances[len(instances) // 2]
    frame_index = middle.number_of_frames // 2 if len(instances) == 1 else 0
    new_key = ""
    try:
        png = instance_preview_png(instance=middle, frame_index=frame_index)
        new_key = f"previews/{series.study.case.public_id}/{uuid.uuid4().hex}.png"
        tenant_storage().save(new_key, io.BytesIO(png), len(png))
    except Exception as exc:
        # The type only: messages of decoders may quote header values.
        logger.warning("preview of series %s failed: %s", series.pk, type(exc).__name__)
    old_key = series.preview_key
    Series.objects.filter(pk=series.pk).update(preview_key=new_key or old_key, preview_instance_count=count)
    if new_key and old_key and old_key != new_key:
        tenant_storage().delete(old_key)
    return new_key or old_key


def series_preview_schedule(*, series_ids: list[int]) -> None:
    """Queue a preview for each series after the transaction commits, at most once per
    debounce window per series: a folder of 1,000 files arrives as 1,000 uploads, and drawing
    1,000 previews of a growing series would be wasted work."""
    from imaging.tasks import series_preview

    schema = current_schema_name()
    for series_id in series_ids:
        try:
            due = cache.add(f"series-preview:{schema}:{series_id}", 1, timeout=PREVIEW_DEBOUNCE_SECONDS)
        except Exception as exc:  # Redis away: the images are in; a preview can wait
            logger.warning("preview not scheduled (cache unavailable): %s", type(exc).__name__)
            return
        if due:
            transaction.on_commit(
                lambda sid=series_id: series_preview.apply_async(  # type: ignore[misc]
                    args=(sid,), countdown=PREVIEW_DEBOUNCE_SECONDS
                ),
                robust=True,  # nor may the broker being away fail the ingest
            )
