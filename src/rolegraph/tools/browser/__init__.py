"""`browser`: a real headless Chromium, for pages whose text only exists after their scripts run.

Three parts, one module each:

- `session`: lifecycle. Find Chromium, launch it on first use, keep a pool of
  at most ``max_pages`` pages (the least recently used is closed first), close
  everything in `BrowserTool.aclose`, cancelled runs included.
- `guard`: the network guard. The URL policy applied to every request a page
  makes, each allowed request sent by the guard through an injectable httpx
  transport to the address the policy checked, redirects checked hop by hop,
  the refused ones listed; and Chromium left no network of its own.
- `actions`: open, read, links, click, scroll, screenshot on one page; only a
  page that really loaded is read or registered as a source.

`tool` puts them together as the `browser` tool. Page text reaches the model
framed as untrusted data (`tools/untrusted.py`). Every response is read whole,
over httpx, before the page sees it: no streaming, no HTTP/2.
"""

from rolegraph.tools.browser.session import CHROMIUM_ENV, CHROMIUM_FLAGS, find_chromium
from rolegraph.tools.browser.tool import BrowserArgs, BrowserTool

__all__ = ["CHROMIUM_ENV", "CHROMIUM_FLAGS", "BrowserArgs", "BrowserTool", "find_chromium"]
