"""A printable A6 shipping label (PDF, fpdf2): sender, recipient, order, tracking number and a
Code 39 barcode of the tracking number. The built-in carrier prints it on the label's first
download; the document is stored then and served as stored from then on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fpdf import FPDF

PAGE = (105.0, 148.0)  # A6 portrait, mm
MARGIN = 6.0
BAR_WIDTH = 1.0  # mm, the wide bar of Code 39 (narrow = a third of it)
BAR_HEIGHT = 18.0


@dataclass(frozen=True)
class LabelContent:
    carrier_title: str
    service: str
    tracking_number: str
    sender: tuple[str, ...]
    recipient: tuple[str, ...]
    order_id: str
    shipment_id: str
    created_at: datetime


def _latin1(value: str) -> str:
    """The PDF core fonts only know Latin-1: anything else prints as '?' rather than failing."""
    return value.encode("latin-1", "replace").decode("latin-1")


def render_label(content: LabelContent) -> bytes:
    from fpdf import FPDF  # imported when a label is printed, not at cold start

    pdf = FPDF(unit="mm", format=PAGE)
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_title(_latin1(f"Shipping label {content.tracking_number}"))
    pdf.set_creator("FusionCommerce")
    pdf.add_page()
    width = PAGE[0] - 2 * MARGIN

    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(width, 7, _latin1(content.carrier_title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    created_at = content.created_at.astimezone(UTC)  # read back from the database, it is in the session's zone
    pdf.cell(width, 4, _latin1(f"{content.service}  |  {created_at:%Y-%m-%d %H:%M} UTC"),
             new_x="LMARGIN", new_y="NEXT")
    _rule(pdf, width)

    _block(pdf, width, "FROM", content.sender, size=8)
    _rule(pdf, width)
    _block(pdf, width, "SHIP TO", content.recipient, size=12)
    _rule(pdf, width)

    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(width, 4, _latin1(f"Order: {content.order_id}"), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(width, 4, _latin1(f"Shipment: {content.shipment_id}"), align="L", new_x="LMARGIN", new_y="NEXT")
    _rule(pdf, width)

    pdf.set_font("Helvetica", "B", 8)
    pdf.cell(width, 4, "TRACKING NUMBER", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "B", 15)
    pdf.cell(width, 8, content.tracking_number, align="C", new_x="LMARGIN", new_y="NEXT")
    _barcode(pdf, content.tracking_number, top=pdf.get_y() + 2)
    return bytes(pdf.output())


def _rule(pdf: FPDF, width: float) -> None:
    y = pdf.get_y() + 1.5
    pdf.line(MARGIN, y, MARGIN + width, y)
    pdf.set_y(y + 1.5)


def _block(pdf: FPDF, width: float, title: str, lines: tuple[str, ...], size: int) -> None:
    pdf.set_font("Helvetica", "B", 8)
    pdf.cell(width, 4, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", size)
    for line in lines:
        pdf.multi_cell(width, size * 0.45, _latin1(line), align="L", new_x="LMARGIN", new_y="NEXT")


def _barcode(pdf: FPDF, tracking_number: str, top: float) -> None:
    text = f"*{tracking_number}*"
    # Code 39: per character 3 wide + 6 narrow bars and a narrow gap = 16/3 of a wide bar.
    barcode_width = len(text) * BAR_WIDTH * 16 / 3
    left = (PAGE[0] - barcode_width) / 2
    pdf.set_fill_color(0)
    pdf.code39(text, left, top, w=BAR_WIDTH, h=BAR_HEIGHT)
