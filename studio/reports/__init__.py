"""Self-contained HTML pages: the evaluation report and the one-trajectory viewer."""

from .evaluation import REPORT, markdown_table, pareto_front, write_report
from .viewer import ViewError, find_record, open_page, render_trajectory, write_view

__all__ = [
    "REPORT",
    "ViewError",
    "find_record",
    "markdown_table",
    "open_page",
    "pareto_front",
    "render_trajectory",
    "write_report",
    "write_view",
]
