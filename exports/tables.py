"""Moved to ``analysis.tables`` (next to ``Artifact``, whose view model uses it); kept so exports code reads the same."""

from analysis.tables import (  # noqa: F401
    PAGE_SIZE,
    Cell,
    Column,
    TablePage,
    cell_format,
    column_decimals,
    table_data_read,
    table_page_build,
)
