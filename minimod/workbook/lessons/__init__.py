"""The lesson texts, one module per lesson: the idea, the formulas, the shapes, the pitfalls."""
