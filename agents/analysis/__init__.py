"""Looking inside the reasoning of a trained model (issue 31): :func:`agents.analyze.analyze`.

- :mod:`agents.analysis.subjects`: a checkpoint of any trainer, its inputs and how answers score;
- :mod:`agents.analysis.metrics`: forward residuals, participation ratio, correlation, params, FLOPs;
- :mod:`agents.analysis.measure`: the passes over the inputs and the figures of ``analysis.json``;
- :mod:`agents.analysis.report` and :mod:`agents.analysis.readings`: the PNGs and ``report.md``.
"""
