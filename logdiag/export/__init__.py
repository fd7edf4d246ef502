"""Export: what logdiag found as Parquet datasets (:mod:`.parquet`), and summaries of them (:mod:`.summary`)."""
