"""Validation of the model against the real kernel (`reclaim-ext validate kernel`; docs/fidelity.md)."""

from .calibrate import Calibration, RunCalibration, calibrate_run, combine, relative_error
from .errors import CgroupError, Unavailable

__all__ = ["Calibration", "CgroupError", "RunCalibration", "Unavailable", "calibrate_run", "combine",
           "relative_error"]
