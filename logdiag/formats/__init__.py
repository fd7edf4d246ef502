"""Log formats: one module per format, each knowing how its lines become records."""

from logdiag.formats.base import Detection, LogFormat
from logdiag.formats.detect import detect

__all__ = ["Detection", "LogFormat", "detect"]
