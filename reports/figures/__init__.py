"""Report figures, one topic per module; each function draws on an ``ax`` it is given
(``draw_*(ax, run)``), so the report and the notebooks compose them. Figures are
:class:`matplotlib.figure.Figure` objects (never pyplot state); the report renders them to PNG
through an explicit Agg canvas (:func:`reports.figures._style.png_bytes`)."""
