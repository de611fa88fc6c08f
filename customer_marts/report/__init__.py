"""The visual run report (page): charts of the marts, the data quality section, SVG
primitives, scales and the reading of the published build; its CSS is report.css."""
