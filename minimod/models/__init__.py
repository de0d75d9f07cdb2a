"""Models built from minimod layers: each file reads top to bottom like a paper."""
