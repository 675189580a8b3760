"""Station observations: readers for the real files (:mod:`.readers`) and quality control
(:mod:`.qc`)."""

from .qc import qc_flags, mask_flagged, summarize_flags
from .readers import (ObservationFormatError, read_cnemc, read_prsa, read_shanghai_uci,
                      read_station_coords, to_dataset)

__all__ = ["ObservationFormatError", "read_prsa", "read_shanghai_uci", "read_cnemc",
           "read_station_coords", "to_dataset", "qc_flags", "mask_flagged", "summarize_flags"]
