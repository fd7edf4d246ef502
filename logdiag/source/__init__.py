"""Bytes in: the user's paths as inputs, each opened once and read as bytes, pieces or lines.

- :mod:`~logdiag.source.paths`: files, globs, log directories and archives as inputs, and stdin;
- :mod:`~logdiag.source.inputs`: :class:`~logdiag.source.inputs.OpenInput`, one input opened once;
- :mod:`~logdiag.source.compression`: gzip (ISA-L), bzip2, xz and zstd, told by magic bytes;
- :mod:`~logdiag.source.archives`: tar (compressed or not) and zip archives, read like a directory;
- :mod:`~logdiag.source.live`: standard input as it arrives, and ``--follow``;
- :mod:`~logdiag.source.framing`: streams cut into lines and sampled, with the ``TICK`` and
  ``FileSwitch`` events live input sends;
- :mod:`~logdiag.source.stats`: per-input counts (``InputStats``) and the bad-line policy.
"""
