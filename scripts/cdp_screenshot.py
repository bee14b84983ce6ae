"""Screenshot a web page with headless Chromium once it has finished loading.

Used by scripts/screenshots.sh (Python for scripts and tests only). Chromium's
own --screenshot takes the picture when its virtual time budget runs out,
whether or not the page's images have arrived (MLflow's image grid then shows
a grey placeholder). This drives Chromium over the DevTools protocol instead
and takes the picture only when

  - the document is loaded, no request has been in flight and the page's
    text has not changed for QUIET seconds,
  - every <img> on the page has loaded (complete, with a natural width),
  - no loading placeholder (a skeleton, an aria-busy region) is shown, and
  - the --wait-for JavaScript expression, when given, is true,

or fails (exit 1, naming the page and what it still waited for) after
--timeout seconds. It also fails, naming them, when a request of the page
failed or answered with an HTTP error (but for URLs containing an --ignore
string), or when the page's text contains a --fail-on-text string: a page
that shows "Failed to load child runs" is not a picture of a working run.

Usage: cdp_screenshot.py --chromium PATH --url URL --out FILE.png
       [--size 1400,900] [--wait-for JS] [--timeout 90]
       [--ignore URL-PART]... [--fail-on-text TEXT]...
       cdp_screenshot.py --chromium PATH --shots FILE [--timeout 90]
       [--ignore URL-PART]... [--fail-on-text TEXT]...

With --shots, one Chromium takes every picture FILE lists, one a line as
OUT<tab>URL<tab>WIDTH,HEIGHT<tab>WAIT-FOR (WAIT-FOR may be empty), one after
another, each in a browser context of its own (its own cookies, storage and
cache, as a fresh profile would have) that is closed after its picture; the
--timeout, --ignore and --fail-on-text options apply to each. It stops at
the first picture that fails, naming it; the pictures before it are written.
"""

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp

QUIET = 1.5

# The kinds of request the picture waits for.
WAITED = {"Document", "Stylesheet", "Script", "Image", "XHR", "Fetch", "Font"}

# The page's state: loaded, its images, placeholders still shown (skeletons,
# busy regions), and its text (which must stay the same for QUIET seconds).
PAGE_STATE = """(() => {
  const imgs = Array.from(document.images);
  const pending = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120));
  const loading = document.querySelectorAll('[class*="keleton"], [aria-busy="true"]').length;
  return JSON.stringify({ready: document.readyState === 'complete', pending, loading,
                         text: document.body ? document.body.innerText : ''});
})()"""


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.replies = {}
        self.inflight = {}
        self.last_activity = time.monotonic()
        self.failures = []

    async def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.replies[mid] = fut
        await self.ws.send_str(json.dumps({"id": mid, "method": method, "params": params}))
        reply = await fut
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def pump(self):
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            m = json.loads(msg.data)
            if "id" in m:
                fut = self.replies.pop(m["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(m)
                continue
            self.event(m.get("method"), m.get("params", {}))

    def event(self, method, p):
        if method == "Network.requestWillBeSent":
            self.last_activity = time.monotonic()
            url = p["request"]["url"]
            # A worker's script is loaded by the worker's own target, whose
            # end this page never hears of.
            if p.get("type") in WAITED and not url.endswith(".worker.js"):
                self.inflight[p["requestId"]] = f"{p.get('type')} {url}"
        elif method == "Network.responseReceived":
            r = p["response"]
            if r.get("status", 0) >= 400:
                self.failures.append(f"HTTP {r['status']} {r['url'][:200]}")
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            url = self.inflight.pop(p["requestId"], "")
            self.last_activity = time.monotonic()
            if method == "Network.loadingFailed" and not p.get("canceled"):
                self.failures.append(f"failed ({p.get('errorText')}) {url[:200]}")


async def shoot(ws_url, args, shot):
    """Takes one picture: shot is (out, url, "WIDTH,HEIGHT", wait_for)."""
    out, url, size, wait_for = shot
    width, height = (int(v) for v in size.split(","))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            page = Page(ws)
            pump = asyncio.create_task(page.pump())
            await page.call("Network.enable")
            await page.call("Page.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                            deviceScaleFactor=1, mobile=False)
            await page.call("Page.navigate", url=url)
            deadline = time.monotonic() + args.timeout
            text, text_since = None, time.monotonic()
            while True:
                await asyncio.sleep(0.25)
                state = json.loads((await page.call("Runtime.evaluate", expression=PAGE_STATE,
                                                    returnByValue=True))["result"]["value"])
                if state["text"] != text:
                    text, text_since = state["text"], time.monotonic()
                custom = True
                if wait_for:
                    r = await page.call("Runtime.evaluate", expression=wait_for, returnByValue=True)
                    custom = bool(r["result"].get("value"))
                now = time.monotonic()
                quiet = not page.inflight and now - page.last_activity >= QUIET and now - text_since >= QUIET
                if state["ready"] and not state["pending"] and not state["loading"] and custom and quiet:
                    break
                waiting = (f"document ready={state['ready']}, images not loaded={state['pending']}, "
                           f"placeholders={state['loading']}, --wait-for={custom}, "
                           f"requests in flight={list(page.inflight.values())[:5]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url}: still waiting after {args.timeout}s: {waiting}")
            shot = await page.call("Page.captureScreenshot", format="png")
            with open(out, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            text = (await page.call("Runtime.evaluate", expression="document.body.innerText",
                                    returnByValue=True))["result"].get("value", "")
            pump.cancel()
            problems = [f"request {f}" for f in page.failures if not any(i in f for i in args.ignore)]
            problems += [f"the page says {t!r}" for t in args.fail_on_text if t in text]
            if problems:
                raise RuntimeError("; ".join(problems))


def read_shots(path):
    """The pictures of a --shots file: (out, url, size, wait_for) a line."""
    shots = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 4 or not fields[0] or not fields[1] or not fields[2]:
                sys.exit(f"cdp_screenshot: {path}:{n}: not OUT<tab>URL<tab>WIDTH,HEIGHT<tab>WAIT-FOR")
            shots.append(tuple(fields))
    if not shots:
        sys.exit(f"cdp_screenshot: {path}: no pictures listed")
    return shots


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--url")
    ap.add_argument("--out")
    ap.add_argument("--size", default="1400,900")
    ap.add_argument("--wait-for", default="")
    ap.add_argument("--shots")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--ignore", action="append", default=[])
    ap.add_argument("--fail-on-text", action="append", default=[])
    args = ap.parse_args()
    if args.shots:
        if args.url or args.out:
            ap.error("--shots takes no --url or --out")
        shots = read_shots(args.shots)
    elif args.url and args.out:
        shots = [(args.out, args.url, args.size, args.wait_for)]
    else:
        ap.error("give --url and --out, or --shots")
    # The window fits the largest picture; each page's viewport is set to its
    # own size (Emulation.setDeviceMetricsOverride).
    sizes = [tuple(int(v) for v in size.split(",")) for _, _, size, _ in shots]
    window = f"{max(w for w, _ in sizes)},{max(h for _, h in sizes)}"

    profile = tempfile.mkdtemp(prefix="cdp-chromium-")
    proc = subprocess.Popen([args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", "--hide-scrollbars", f"--window-size={window}",
                             f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--remote-debugging-address=127.0.0.1", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = shots[0][0]
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().count("\n") >= 1:
                break
            if proc.poll() is not None:
                sys.exit(f"cdp_screenshot: Chromium exited with {proc.returncode}")
            time.sleep(0.1)
        else:
            sys.exit("cdp_screenshot: Chromium did not open its DevTools port")
        port = open(port_file).read().split("\n")[0].strip()
        browser_ws = asyncio.run(browser_target(port))
        for shot in shots:
            out = shot[0]
            asyncio.run(shoot_in_own_context(port, browser_ws, args, shot))
            print(out, flush=True)
    except Exception as e:  # one line naming the page, for the shell script
        sys.exit(f"cdp_screenshot: {out}: {e}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def browser_target(port):
    """The DevTools WebSocket URL of the browser itself."""
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(f"http://127.0.0.1:{port}/json/version") as r:
                url = (await r.json(content_type=None)).get("webSocketDebuggerUrl")
                if url:
                    return url
            await asyncio.sleep(0.1)
    raise RuntimeError("no browser target in Chromium")


async def shoot_in_own_context(port, browser_ws, args, shot):
    """Takes one picture in a new browser context, disposed of afterwards."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(browser_ws, max_msg_size=0) as ws:
            browser = Page(ws)
            pump = asyncio.create_task(browser.pump())
            ctx = (await browser.call("Target.createBrowserContext"))["browserContextId"]
            try:
                target = (await browser.call("Target.createTarget", url="about:blank",
                                             browserContextId=ctx))["targetId"]
                await shoot(f"ws://127.0.0.1:{port}/devtools/page/{target}", args, shot)
            finally:
                await browser.call("Target.disposeBrowserContext", browserContextId=ctx)
                pump.cancel()


if __name__ == "__main__":
    main()
