"""QR codes rendered here (segno, pure Python): the text a provider gives us → SVG or PNG."""

from __future__ import annotations

import base64
import io

import segno


def svg(text: str) -> str:
    """An SVG document, black on white, with a quiet zone: what a phone's camera reads best."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=6, border=4, xmldecl=False)
    return buffer.getvalue().decode()


def png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()


def data_uri(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(text)).decode()
