"""The fast path's sizes that a user can change, in one leaf module (the package and its
modules both read them)."""

#: Files smaller than this (decompressed) are read the ordinary way: below it, importing polars
#: costs more than reading every record in Python (both about 0.3 s for 2 MB of csvlog; a 15 MB
#: file took 4 s that way, against 1 s pre-filtered).
FAST_PATH_MIN_BYTES = 2 * 1024 * 1024
#: How much of a pipe's or followed file's recent lines is held for sessions that may fail later.
LOOKBACK_BYTES = 6 * 1024 * 1024  # memory stays small
#: How far after a line of a compressed file its session's failure still keeps it.
WINDOW_BYTES = 64 * 1024 * 1024
