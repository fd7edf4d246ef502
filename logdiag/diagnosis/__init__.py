"""Diagnosis: from log records to incidents, each naming the statement that broke its transaction.

Modules, in the order a record meets them:

- :mod:`~logdiag.diagnosis.statements`: statements as the log shows them, found with cheap string
  tests (no SQL parser: every record passes here).
- :mod:`~logdiag.diagnosis.sessions`: sessions and transactions; an ERROR with the statements that
  belong with it becomes a ``Failure``.
- :mod:`~logdiag.diagnosis.messages`: constraint-violation messages and their DETAIL: which
  constraint, table and key (and which SQLSTATEs are violations).
- :mod:`~logdiag.diagnosis.diagnose`: from a failure to an incident: timing, key, culprits, evidence.
- :mod:`~logdiag.diagnosis.catalog`: tables and constraints from the DDL in the log.
- :mod:`~logdiag.diagnosis.sql`: what a statement wrote, from its SQL; the only module that
  imports pglast, and only for transactions that ended in an incident.
- :mod:`~logdiag.diagnosis.explain`: the words: an incident's explanation and hints.
- :mod:`~logdiag.diagnosis.incidents`: the results, shaped like the JSON contract.
"""
