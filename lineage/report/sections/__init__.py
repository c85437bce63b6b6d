"""The brief's sections: one pure builder per section, from ``BriefInputs`` to view models.

    subject      2  the model, its revision and what its card declares
    lineage      3  ancestors, the figure, the recipe, weight verification
    method       4  suites, judge, decoding, statistics, environments
    results      5  measured rates, charts, paired comparisons
    findings     6  audit and verification findings, with the samples behind them
    verdict      1  the badge and the summary in words
    limitations  7  limitations and recommendations
    manifest     8  how to reproduce the brief, and what it rests on (with the mapping)

None reads the registry or the clock; ``lineage.report.context`` calls them in order.
"""
