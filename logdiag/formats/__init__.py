"""Log formats: one module per format family, one :class:`~logdiag.formats.base.Format` object
per format that knows how its lines become records (and what the fast path needs of it).

- ``base``: :class:`LogFormat` (the names), :class:`Format`, :class:`Prefilter`, :class:`Detection`;
- ``registry``: every format by name (:func:`format_of`);
- ``detect``: which format an input is, and its ``log_line_prefix``;
- ``csvlog``, ``jsonlog`` (with CloudNativePG and Cloud SQL), ``stderr`` (with syslog and logplex);
- ``mapping`` (records from key/value inputs), ``prefix`` (``log_line_prefix``), ``timestamps``
  and ``tzabbrevs``.
"""

from logdiag.formats.base import Detection, Format, LogFormat, Prefilter
from logdiag.formats.detect import detect
from logdiag.formats.infer import shows_a_client_session
from logdiag.formats.registry import format_of

__all__ = ["Detection", "Format", "LogFormat", "Prefilter", "detect", "format_of", "shows_a_client_session"]
