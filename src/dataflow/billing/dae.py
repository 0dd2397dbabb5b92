"""DAE statements: a PDF for people and a CSV for the finance systems, per issued invoice."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date
from pathlib import Path

from reportlab.graphics.barcode.common import I2of5
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from dataflow.billing.barcode import arrecadacao_barcode, typeable_line
from dataflow.billing.errors import InvoiceStateError
from dataflow.billing.lifecycle import OPEN, SAO_PAULO
from dataflow.billing.models import InvoiceLine
from dataflow.billing.money import Brl
from dataflow.billing.reading.wording import line_text
from dataflow.billing.reference import DaeConfig
from dataflow.billing.repository import StoredInvoice
from dataflow.ptbr import brl as _brl
from dataflow.ptbr import cnpj as _cnpj
from dataflow.ptbr import decimal_br, inteiro
from dataflow.ptbr import ufemg as _ufemg

__all__ = ["CSV_FIELDS", "Statement", "statement_csv", "write_statement_pdf"]

CSV_FIELDS = [
    "invoice_number",
    "dae_reference",
    "revenue_code",
    "payer_name",
    "payer_cnpj",
    "reference_period",
    "issue_date",
    "due_date",
    "brl_per_ufemg",
    "line",
    "line_code",
    "line_description",
    "quantity",
    "unit_price_ufemg",
    "amount_ufemg",
    "amount_brl",
    "total_ufemg",
    "total_brl",
    "barcode",
    "example_values",
    "line_text_pt",
]


class Statement:
    """What a DAE shows, derived once from an issued invoice."""

    def __init__(self, inv: StoredInvoice, lines: list[InvoiceLine], dae: DaeConfig) -> None:
        if inv.status not in (*OPEN, "paid") or not inv.dae_reference or not inv.due_date:
            raise InvoiceStateError(inv.id, inv.status, "print a DAE (issue it first)")
        self.inv = inv
        self.lines = lines
        self.dae = dae
        # A zero statement (sandbox month, Art. 29) is a usage report: nothing to pay, no barcode.
        self.payable = inv.total_brl > 0
        self.barcode = arrecadacao_barcode(
            Brl(inv.total_brl),
            agency_code=dae.barcode_agency_code,
            due=inv.due_date,
            revenue_code=dae.revenue_code,
            reference=inv.dae_reference,
            value_id=dae.value_identifier,
        )
        self.typeable = typeable_line(self.barcode)

    @property
    def period(self) -> str:
        i = self.inv
        if i.month:
            return f"{i.month[5:]}/{i.month[:4]}"
        return {
            "analysis_fee": "taxa de análise (Art. 9º)",
            "on_demand": "orçamento (Art. 12)",
        }.get(i.invoice_kind, i.invoice_kind)

    @property
    def issue_date(self) -> date | None:
        """The issue date in São Paulo (SQLite hands timestamps back naive, in UTC)."""
        at = self.inv.issued_at
        if at is None:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(SAO_PAULO).date()


def statement_csv(statements: list[Statement]) -> str:
    """One row per line item, with the invoice's identifiers repeated (easy to load anywhere)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for s in statements:
        i = s.inv
        for n, line in enumerate(s.lines, start=1):
            w.writerow(
                {
                    "invoice_number": i.number,
                    "dae_reference": i.dae_reference,
                    "revenue_code": s.dae.revenue_code,
                    "payer_name": i.payer_name,
                    "payer_cnpj": i.payer_cnpj or "",
                    "reference_period": i.month or i.invoice_kind,
                    "issue_date": s.issue_date.isoformat() if s.issue_date else "",
                    "due_date": i.due_date.isoformat() if i.due_date else "",
                    "brl_per_ufemg": i.brl_per_ufemg,
                    "line": n,
                    "line_code": line.code,
                    "line_description": line.description,
                    "quantity": "" if line.quantity is None else line.quantity,
                    "unit_price_ufemg": ""
                    if line.unit_price_ufemg is None
                    else line.unit_price_ufemg,
                    "amount_ufemg": line.amount_ufemg,
                    "amount_brl": line.amount_brl,
                    "total_ufemg": i.total_ufemg,
                    "total_brl": i.total_brl,
                    "barcode": s.barcode if s.payable else "",
                    # every row says which reference values were examples, so no row loaded
                    # into a finance system alone can pass for a real DAE
                    "example_values": "; ".join(s.dae.example_values()),
                    "line_text_pt": line_text(line),
                }
            )
    return buf.getvalue()


def _wrap(c: Canvas, text: str, width: float, font: str, size: float) -> list[str]:
    words, out, cur = text.split(), [], ""
    for w in words:
        trial = f"{cur} {w}".strip()
        if c.stringWidth(trial, font, size) <= width:
            cur = trial
        else:
            out.append(cur)
            cur = w
    if cur:
        out.append(cur)
    return out or [""]


def _box(c: Canvas, x: float, y: float, w: float, h: float, label: str, value: str) -> None:
    c.setStrokeColor(colors.black)
    c.rect(x, y, w, h)
    c.setFont("Helvetica", 6.5)
    c.drawString(x + 1.5 * mm, y + h - 3 * mm, label.upper())
    c.setFont("Helvetica-Bold", 9.5)
    c.drawString(x + 1.5 * mm, y + 2 * mm, value)


def write_statement_pdf(s: Statement, path: Path) -> Path:
    """Draw the DAE: header, payer, amounts, line items, then the payment slip with barcode."""
    i = s.inv
    c = Canvas(str(path), pagesize=A4)
    c.setTitle(f"DAE {i.dae_reference} — {i.payer_name}")
    c.setAuthor("SEF/MG — dataflow")
    w, h = A4
    left, right = 15 * mm, w - 15 * mm
    width = right - left
    y = h - 18 * mm
    c.setFont("Helvetica-Bold", 12)
    c.drawString(left, y, "GOVERNO DO ESTADO DE MINAS GERAIS")
    c.setFont("Helvetica", 9)
    c.drawString(left, y - 5 * mm, s.dae.payee)
    c.setFont("Helvetica-Bold", 10.5)
    c.drawRightString(right, y, "DAE — Documento de Arrecadação Estadual")
    c.setFont("Helvetica", 8.5)
    c.drawRightString(right, y - 5 * mm, f"Fatura {i.number}")
    if s.dae.example:
        c.setFillColor(colors.red)
        c.setFont("Helvetica-Bold", 8)
        c.drawRightString(
            right,
            y - 10 * mm,
            "MODELO — códigos de receita e de órgão de exemplo (datasets/dae.toml)",
        )
        c.setFillColor(colors.black)
    y -= 24 * mm
    row_h = 10 * mm
    col = width / 4
    _box(c, left, y, col * 2.5, row_h, "Contribuinte / pagador", i.payer_name[:48])
    _box(c, left + col * 2.5, y, col * 1.5, row_h, "CNPJ", _cnpj(i.payer_cnpj))
    y -= row_h
    _box(c, left, y, col, row_h, "Código de receita", s.dae.revenue_code)
    _box(c, left + col, y, col, row_h, "Período de referência", s.period)
    _box(c, left + 2 * col, y, col, row_h, "Data de emissão", f"{s.issue_date:%d/%m/%Y}")
    _box(c, left + 3 * col, y, col, row_h, "Vencimento", f"{i.due_date:%d/%m/%Y}")
    y -= row_h
    _box(c, left, y, col, row_h, "Valor em UFEMG", _ufemg(i.total_ufemg))
    _box(c, left + col, y, col, row_h, "UFEMG (R$)", decimal_br(i.brl_per_ufemg, 4))
    _box(c, left + 2 * col, y, col, row_h, "Valor total", _brl(i.total_brl))
    _box(c, left + 3 * col, y, col, row_h, "Nº de referência", i.dae_reference or "")
    y -= 8 * mm
    c.setFont("Helvetica", 8)
    c.drawString(left, y, s.dae.revenue_description)
    y -= 8 * mm
    # line items
    cols = [left, left + 98 * mm, left + 122 * mm, left + 146 * mm, right]
    c.setFillColor(colors.HexColor("#e8e8e8"))
    c.rect(left, y - 1.5 * mm, width, 5.5 * mm, stroke=0, fill=1)
    c.setFillColor(colors.black)
    c.setFont("Helvetica-Bold", 8)
    c.drawString(cols[0] + 1 * mm, y, "Discriminação")
    c.drawRightString(cols[2] - 1 * mm, y, "Quantidade")
    c.drawRightString(cols[3] - 1 * mm, y, "UFEMG")
    c.drawRightString(cols[4] - 1 * mm, y, "R$")
    y -= 6 * mm
    for line in s.lines:
        desc = _wrap(c, line_text(line), cols[1] - cols[0] - 2 * mm, "Helvetica", 7.5)
        if y - 4 * mm * len(desc) < 95 * mm:  # keep clear of the payment slip
            c.setFont("Helvetica-Oblique", 7.5)
            c.drawString(left, y, "… (continua no CSV)")
            y -= 4 * mm
            break
        c.setFont("Helvetica", 7.5)
        for k, text in enumerate(desc):
            c.drawString(cols[0] + 1 * mm, y - k * 3.6 * mm, text)
        if line.quantity is not None:
            c.drawRightString(cols[2] - 1 * mm, y, inteiro(line.quantity))
        c.drawRightString(cols[3] - 1 * mm, y, _ufemg(line.amount_ufemg))
        c.drawRightString(cols[4] - 1 * mm, y, _brl(line.amount_brl))
        y -= 3.6 * mm * len(desc) + 1.6 * mm
    c.line(left, y + 1 * mm, right, y + 1 * mm)
    c.setFont("Helvetica-Bold", 9)
    y -= 3 * mm
    c.drawString(cols[0] + 1 * mm, y, "Total")
    c.drawRightString(cols[3] - 1 * mm, y, _ufemg(i.total_ufemg))
    c.drawRightString(cols[4] - 1 * mm, y, _brl(i.total_brl))
    if not s.payable:
        y -= 12 * mm
        c.setFont("Helvetica-Bold", 11)
        c.drawString(left, y, "Nada a pagar — preço público afastado (Art. 29).")
        c.setFont("Helvetica", 8.5)
        c.drawString(
            left,
            y - 5 * mm,
            "Demonstrativo de uso do ambiente SANDBOX para monitoramento (Art. 38–39): acessos, "
            "limite e janela acima.",
        )
        c.showPage()
        c.save()
        return path
    # payment slip
    y = 80 * mm
    c.setDash(3, 2)
    c.line(left, y + 6 * mm, right, y + 6 * mm)
    c.setDash()
    c.setFont("Helvetica", 6.5)
    c.drawString(left, y + 7 * mm, "corte aqui")
    c.setFont("Helvetica-Bold", 10)
    c.drawString(left, y, "DAE — via do banco")
    c.drawRightString(right, y, f"Vencimento {i.due_date:%d/%m/%Y}   {_brl(i.total_brl)}")
    y -= 8 * mm
    c.setFont("Courier-Bold", 11.5)
    c.drawString(left, y, s.typeable)
    y -= 4 * mm
    bar = I2of5(
        s.barcode,
        barWidth=0.33 * mm,
        ratio=3,
        barHeight=13 * mm,
        checksum=0,
        bearers=0,
        quiet=1,
        lquiet=0,
        rquiet=0,
    )
    bar.drawOn(c, left, y - 13 * mm)
    y -= 19 * mm
    if s.dae.example:
        c.saveState()
        c.setFillColor(colors.red)
        c.setFont("Helvetica-Bold", 10)
        c.drawRightString(right, y + 14 * mm, "MODELO — NÃO PAGÁVEL")
        c.setFont("Helvetica-Bold", 7)
        c.drawRightString(right, y + 10 * mm, "receita e órgão de exemplo")
        c.drawRightString(right, y + 7 * mm, "(datasets/dae.toml)")
        c.restoreState()
    c.setFont("Helvetica", 7)
    c.drawString(
        left,
        y,
        f"Nº de referência {i.dae_reference} · receita {s.dae.revenue_code} · "
        f"pagador {i.payer_name} ({_cnpj(i.payer_cnpj)}) · período {s.period}",
    )
    c.drawString(
        left,
        y - 4 * mm,
        "Código de barras FEBRABAN de arrecadação (produto 8, segmento 5, valor efetivo, "
        f"mód. {10 if s.dae.value_identifier == '6' else 11}; campo livre: receita, referência, "
        "vencimento).",
    )
    c.showPage()
    c.save()
    return path
