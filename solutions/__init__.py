"""The completed lessons, generated from minimod's own code by `make workbook`."""
