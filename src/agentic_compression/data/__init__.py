"""Small real text shipped with the package (see SOURCES.md)."""
