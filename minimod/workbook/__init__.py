"""The workbook: numbered lessons generated from minimod's own code (see DESIGN.md §4)."""
