"""Question bodies become readable text: code kept verbatim, entities decoded, links kept."""

from __future__ import annotations

from triage.sources.html_text import html_to_text


def test_paragraphs_inline_code_and_entities() -> None:
    text = html_to_text(
        "<p>I call <code>client.generate()</code> and get <strong>&lt;Response [400]&gt;</strong>"
        " &amp; &quot;quota&quot; &#8212; it&#39;s odd.</p>\n\n<p>Second   paragraph\nwraps.</p>"
    )
    assert text == (
        'I call `client.generate()` and get <Response [400]> & "quota" — it\'s odd.\n\n'
        "Second paragraph wraps."
    )


def test_code_block_kept_verbatim_with_language() -> None:
    body = (
        "<p>Code:</p>\n"
        '<pre class="lang-py prettyprint-override"><code>def f(a, b):\n'
        "    if a &lt; b &amp;&amp; b &gt; 0:\n"
        "        return &quot;x&quot;  # two  spaces\n"
        "</code></pre>\n<p>After.</p>"
    )
    assert html_to_text(body) == (
        "Code:\n\n```py\ndef f(a, b):\n    if a < b && b > 0:\n"
        '        return "x"  # two  spaces\n```\n\nAfter.'
    )


def test_code_block_without_language_and_with_backticks() -> None:
    assert html_to_text("<pre><code>x = 1\n</code></pre>") == "```\nx = 1\n```"
    assert html_to_text("<pre><code>a ```b```</code></pre>") == "````\na ```b```\n````"
    assert html_to_text("<p><code>a`b</code></p>") == "``a`b``"


def test_links_are_text_then_url() -> None:
    text = html_to_text(
        '<p>See <a href="https://ai.google.dev/docs" rel="nofollow">the docs</a>,'
        ' <a href="https://x.org">https://x.org</a> and <a href="#anchor">here</a>.</p>'
    )
    assert text == "See the docs (https://ai.google.dev/docs), https://x.org and here."


def test_lists_nested_and_numbered() -> None:
    body = (
        "<ul>\n<li>first <em>item</em></li>\n<li>second\n<ul><li>nested</li></ul></li>\n</ul>\n"
        "<ol><li><p>step one</p><pre><code>run it\n</code></pre></li><li>step two</li></ol>"
    )
    assert html_to_text(body) == (
        "- first item\n- second\n  - nested\n\n1. step one\n   ```\n   run it\n   ```\n2. step two"
    )


def test_blockquote_breaks_rules_images_and_tables() -> None:
    body = (
        "<blockquote><p>quoted<br>second line</p></blockquote><hr>"
        '<p><img src="https://i.sstatic.net/a.png" alt="screenshot"></p>'
        "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
    )
    assert html_to_text(body) == (
        "> quoted\n> second line\n\n---\n\nscreenshot (https://i.sstatic.net/a.png)\n\na | b\n1 | 2"
    )


def test_broken_markup_and_scripts_do_not_lose_text() -> None:
    assert html_to_text("<p>open <b>bold</p><p>next</i></p>") == "open bold\n\nnext"
    assert html_to_text("<p>a</p><script>alert(1)</script><p>b</p>") == "a\n\nb"
    assert html_to_text("") == ""
    assert html_to_text("plain &amp; simple") == "plain & simple"
