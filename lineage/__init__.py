"""lineage: crawl the merge lineage of a model from cards, configs and weight headers.

The stage that knows the Hub and the file formats; it never evaluates models.
Everything the `lineage` CLI does is callable from here:

>>> from lineage.crawler import crawl, CrawlOptions          # doctest: +SKIP
>>> from registry.database import Registry                    # doctest: +SKIP
>>> report = crawl(Registry.open("sqlite:///lineage.db"), ["org/model"], CrawlOptions())  # doctest: +SKIP
"""

__version__ = "0.1.0"
