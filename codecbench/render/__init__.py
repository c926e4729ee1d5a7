"""Renderings of results: report tables (Markdown, CSV, LaTeX, HTML), the offline HTML report, check results."""
