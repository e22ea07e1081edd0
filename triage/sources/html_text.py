"""Stack Exchange bodies arrive as HTML: turn them into readable text that keeps code intact."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "area", "col", "source"}
BLOCK = {
    "p", "div", "pre", "ul", "ol", "li", "blockquote", "hr", "table", "thead", "tbody", "tfoot",
    "tr", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd", "details", "summary", "section",
}  # fmt: skip
DROP = {"script", "style", "head", "title"}
_SPACE = re.compile(r"[ \t\r\n\f\v]+")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """A forgiving DOM: unknown end tags are ignored, unclosed tags close with their parent."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def html_to_text(html: str) -> str:
    """Readable text: paragraphs, fenced code blocks, `inline code`, links as `text (url)`."""
    if not html:
        return ""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return "\n\n".join(_blocks(builder.root)).strip()


def _raw_text(node: Node | str) -> str:
    if isinstance(node, str):
        return node
    if node.tag == "br":
        return "\n"
    return "".join(_raw_text(c) for c in node.children)


def _blocks(node: Node) -> list[str]:
    """Render a container's children as a list of blocks (joined later by blank lines)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        text = _tidy_inline("".join(run))
        run.clear()
        if text:
            out.append(text)

    for child in node.children:
        if isinstance(child, Node) and child.tag in BLOCK:
            flush()
            out.extend(_block(child))
        else:
            run.append(_inline(child))
    flush()
    return out


def _block(node: Node) -> list[str]:
    tag = node.tag
    if tag == "pre":
        return [_code_block(node)]
    if tag in ("ul", "ol"):
        text = _list(node)
        return [text] if text else []
    if tag == "blockquote":
        inner = "\n\n".join(_blocks(node))
        return ["\n".join("> " + line if line else ">" for line in inner.split("\n"))]
    if tag == "hr":
        return ["---"]
    if tag in ("table", "thead", "tbody", "tfoot"):
        rows = [_row(r) for r in _descendants(node, "tr")]
        return ["\n".join(r for r in rows if r)] if any(rows) else []
    if tag == "tr":
        return [_row(node)]
    return _blocks(node)


def _code_block(node: Node) -> str:
    code = _raw_text(node).strip("\n")
    lang = ""
    for cls in node.attrs.get("class", "").split():
        if cls.startswith("lang-") and cls != "lang-none":
            lang = cls[5:]
    fence = "````" if "```" in code else "```"
    return f"{fence}{lang}\n{code}\n{fence}"


def _list(node: Node) -> str:
    lines: list[str] = []
    number = int(node.attrs.get("start", "1") or 1) if node.tag == "ol" else 0
    for child in node.children:
        if not isinstance(child, Node) or child.tag != "li":
            continue
        marker = f"{number}. " if node.tag == "ol" else "- "
        number += 1
        body = "\n".join(_blocks(child)).split("\n")
        lines.append(marker + body[0])
        lines.extend((" " * len(marker) + line) if line else "" for line in body[1:])
    return "\n".join(lines)


def _row(tr: Node) -> str:
    cells = [c for c in tr.children if isinstance(c, Node) and c.tag in ("td", "th")]
    return " | ".join(_tidy_inline(_inline(c)) for c in cells)


def _descendants(node: Node, tag: str) -> list[Node]:
    found: list[Node] = []
    for child in node.children:
        if isinstance(child, Node):
            if child.tag == tag:
                found.append(child)
            else:
                found.extend(_descendants(child, tag))
    return found


def _inline(node: Node | str) -> str:
    if isinstance(node, str):
        return _SPACE.sub(" ", node)
    tag = node.tag
    if tag in DROP:
        return ""
    if tag == "br":
        return "\n"
    if tag == "code":
        return _code_span(_raw_text(node))
    if tag == "img":
        alt, src = node.attrs.get("alt", "").strip(), node.attrs.get("src", "")
        return f"{alt or 'image'} ({src})" if src else alt
    inner = "".join(_inline(c) for c in node.children)
    if tag == "a":
        href = node.attrs.get("href", "")
        text = inner.strip()
        if not href or href == text or href.startswith("#"):
            return inner
        return f"{text} ({href})" if text else href
    if tag in BLOCK:  # a block inside inline content: keep it on its own line
        return "\n" + inner + "\n"
    return inner


def _code_span(code: str) -> str:
    code = code.replace("\n", " ")
    tick = "``" if "`" in code else "`"
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{tick}{pad}{code}{pad}{tick}"


def _tidy_inline(text: str) -> str:
    """Collapse runs of spaces left between inline pieces and trim each line."""
    lines = [re.sub(r" {2,}", " ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).strip()
