"""lineage: crawl the merge lineage of a model from cards, configs and weight headers.

The stage that knows the Hub and the file formats; it never evaluates models.
Everything the `lineage` CLI does is callable from here:

>>> from lineage.crawler import CrawlOptions, crawl                 # doctest: +SKIP
>>> from lineage.sources.hub import HubSource                       # doctest: +SKIP
>>> from registry.database import Registry                          # doctest: +SKIP
>>> report = crawl(Registry.open(), HubSource(), ["org/model"])    # doctest: +SKIP
"""

__version__ = "0.1.0"
