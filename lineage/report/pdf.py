"""The brief as PDF/A-3b through WeasyPrint, with the CycloneDX BOM attached as a file.

The PDF is the HTML brief laid out for A4 by the print rules of ``templates/brief.css``:
running header (subject and date), page numbers, a table of contents with page numbers,
table rows never split across pages. The same ``BriefContext`` always gives the same bytes:

- the document dates (XMP and info dictionary) and the attachment's dates are the brief's
  date (``SOURCE_DATE_EPOCH`` or the newest registry record), never the clock;
- WeasyPrint derives the PDF file identifier and font subset names from the content
  (md5), and writes no random document id for PDF/A-3;
- nothing is fetched: a URL fetcher that refuses every URL stands in for WeasyPrint's own,
  so no resource named in the document can be loaded even if one slipped through.

>>> write_brief_pdf(context, Path("brief.pdf"))  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lineage.errors import LineageError
from lineage.report.html import render_brief_html
from lineage.report.views import BriefContext

PDF_VARIANT = "pdf/a-3b"
BOM_NAME = "bom.cdx.json"
BOM_DESCRIPTION = "CycloneDX 1.6 ML-BOM: lineage, measured results and findings"


def render_brief_pdf(context: BriefContext) -> bytes:
    """The PDF bytes of the brief of ``context``."""
    weasyprint = _weasyprint()

    class _NoFetching(weasyprint.urls.URLFetcher):
        """Refuses every URL: the brief is self-contained and must stay so."""

        def fetch(self, url: str, headers: dict | None = None):
            raise ValueError(f"the brief loads no external resource ({url[:80]})")

    moment = datetime.fromisoformat(context.moment.replace("Z", "+00:00"))
    bom = weasyprint.Attachment(
        string=context.bom_json,
        name=BOM_NAME,
        description=BOM_DESCRIPTION,
        created=moment,
        modified=moment,
        relationship="Data",
        url_fetcher=_NoFetching(),
    )
    html = render_brief_html(context, for_print=True)
    document = weasyprint.HTML(string=html, url_fetcher=_NoFetching(), media_type="print")
    return document.write_pdf(
        pdf_variant=PDF_VARIANT,
        attachments=[bom],
        uncompressed_pdf=False,
    )


def write_brief_pdf(context: BriefContext, path: Path) -> Path:
    path.write_bytes(render_brief_pdf(context))
    return path


def _weasyprint():
    try:
        import weasyprint
        import weasyprint.urls
    except ImportError as error:  # the optional `pdf` extra; Pango comes from the system
        raise LineageError(
            f"PDF briefs need WeasyPrint ({error}); install it with "
            "`pip install 'lineage-audit[pdf]'`, or write the brief as .html"
        ) from error
    return weasyprint
