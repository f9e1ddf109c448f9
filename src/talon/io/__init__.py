"""talon.io: event arrays, spike encoders, event files, dense representations, streaming.

The reader API (what other talon packages build on)::

    events = talon.io.read_events("rec.h5")          # .h5 (talon / DSEC), .raw (EVT 2.0 / 3.0), .npy
    with talon.io.H5EventReader("rec.h5") as r:        # windows without loading the file
        window = r.read_time_window(t0, t1)

Events are :data:`EVENT_DTYPE` arrays (``x, y int16; t int64 µs; p bool``), tonic's layout.
Modules: ``events`` (dtype, converters), ``encoding``, ``h5``, ``prophesee`` (EVT 2.0 / 3.0, with
compiled loops in ``evt_kernels``), ``aedat4``, ``npy`` (saved arrays), ``formats`` (frames,
voxels, rasters, grids), ``streaming``, ``sync``, ``ethernet``,
``stimulus`` (events as network input), ``throughput``. Layout and tutorial: ``docs/events.md``.
"""

from . import aedat4, encoding, ethernet, formats, h5, npy, prophesee, streaming, sync, throughput
from .aedat4 import AEDAT4Reader, AEDAT4Recording, read_aedat4
from .encoding import delta_encode, latency_encode, rate_encode, temporal_encode
from .events import (
    EVENT_DTYPE,
    EventFormatError,
    as_events,
    concatenate_events,
    empty_events,
    is_time_sorted,
    make_events,
    polarity_sign,
    sort_events,
)
from .files import EventFileInfo, event_file_info, read_events, recorded_sensor_size, write_events
from .formats import events_to_frames, events_to_grid, events_to_raster, events_to_voxel
from .h5 import H5EventReader, H5EventWriter, read_h5, write_h5
from .prophesee import EvtDecoder, decode_evt2, decode_evt3, encode_evt2, encode_evt3, iter_raw, read_raw, write_raw
from .stimulus import events_to_stimulus, stimulus_for_graph
from .streaming import BufferedEventReader, EventBuffer, generate_random_events
from .sync import SensorSync, align_timestamps, merge_events

__all__ = [
    "EVENT_DTYPE",
    "AEDAT4Reader",
    "AEDAT4Recording",
    "BufferedEventReader",
    "EventBuffer",
    "EventFileInfo",
    "EventFormatError",
    "EvtDecoder",
    "H5EventReader",
    "H5EventWriter",
    "SensorSync",
    "aedat4",
    "align_timestamps",
    "as_events",
    "concatenate_events",
    "decode_evt2",
    "decode_evt3",
    "delta_encode",
    "empty_events",
    "encode_evt2",
    "encode_evt3",
    "encoding",
    "ethernet",
    "event_file_info",
    "events_to_frames",
    "events_to_grid",
    "events_to_raster",
    "events_to_stimulus",
    "events_to_voxel",
    "formats",
    "generate_random_events",
    "h5",
    "is_time_sorted",
    "iter_raw",
    "latency_encode",
    "make_events",
    "merge_events",
    "npy",
    "polarity_sign",
    "prophesee",
    "rate_encode",
    "read_aedat4",
    "read_events",
    "read_h5",
    "read_raw",
    "recorded_sensor_size",
    "sort_events",
    "stimulus_for_graph",
    "streaming",
    "sync",
    "temporal_encode",
    "throughput",
    "write_events",
    "write_h5",
    "write_raw",
]
