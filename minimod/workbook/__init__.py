"""The workbook: numbered lessons generated from minimod's own code (see docs/architecture.md §4).

``catalogue`` lists the lessons (texts in ``lessons/``), ``generate`` writes ``exercises/`` and
``solutions/`` (``make workbook``), ``commands`` is ``minimod exercises``, ``checks`` runs a
lesson's tests and explains failures, and ``use_mine()`` trains with your own code.
"""

__all__ = ["use_mine"]


def __getattr__(name: str):
    # Imported on first use, so `python -m minimod.workbook.generate` does not import itself twice.
    if name == "use_mine":
        from minimod.workbook.mine import use_mine

        return use_mine
    raise AttributeError(f"module 'minimod.workbook' has no attribute {name!r}")
