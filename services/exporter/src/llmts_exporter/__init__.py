"""llmts exporter service: Builds export files of a job's items."""
