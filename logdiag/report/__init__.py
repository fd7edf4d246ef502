"""Renderers: text for terminals, JSON/JSONL for programs, Markdown for tickets."""
