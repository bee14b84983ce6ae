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


async def shoot(ws_url, args):
    width, height = (int(v) for v in args.size.split(","))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            page = Page(ws)
            pump = asyncio.create_task(page.pump())
            await page.call("Network.enable")
            await page.call("Page.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                            deviceScaleFactor=1, mobile=False)
            await page.call("Page.navigate", url=args.url)
            deadline = time.monotonic() + args.timeout
            text, text_since = None, time.monotonic()
            while True:
                await asyncio.sleep(0.25)
                state = json.loads((await page.call("Runtime.evaluate", expression=PAGE_STATE,
                                                    returnByValue=True))["result"]["value"])
                if state["text"] != text:
                    text, text_since = state["text"], time.monotonic()
                custom = True
                if args.wait_for:
                    r = await page.call("Runtime.evaluate", expression=args.wait_for, returnByValue=True)
                    custom = bool(r["result"].get("value"))
                now = time.monotonic()
                quiet = not page.inflight and now - page.last_activity >= QUIET and now - text_since >= QUIET
                if state["ready"] and not state["pending"] and not state["loading"] and custom and quiet:
                    break
                waiting = (f"document ready={state['ready']}, images not loaded={state['pending']}, "
                           f"placeholders={state['loading']}, --wait-for={custom}, "
                           f"requests in flight={list(page.inflight.values())[:5]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{args.url}: still waiting after {args.timeout}s: {waiting}")
            shot = await page.call("Page.captureScreenshot", format="png")
            with open(args.out, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            text = (await page.call("Runtime.evaluate", expression="document.body.innerText",
                                    returnByValue=True))["result"].get("value", "")
            pump.cancel()
            problems = [f"request {f}" for f in page.failures if not any(i in f for i in args.ignore)]
            problems += [f"the page says {t!r}" for t in args.fail_on_text if t in text]
            if problems:
                raise RuntimeError("; ".join(problems))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", default="1400,900")
    ap.add_argument("--wait-for", default="")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--ignore", action="append", default=[])
    ap.add_argument("--fail-on-text", action="append", default=[])
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="cdp-chromium-")
    proc = subprocess.Popen([args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", "--hide-scrollbars", f"--window-size={args.size}",
                             f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--remote-debugging-address=127.0.0.1", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        ws_url = asyncio.run(page_target(port))
        asyncio.run(shoot(ws_url, args))
    except Exception as e:  # one line naming the page, for the shell script
        sys.exit(f"cdp_screenshot: {args.out}: {e}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def page_target(port):
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                for t in await r.json(content_type=None):
                    if t.get("type") == "page" and t.get("webSocketDebuggerUrl"):
                        return t["webSocketDebuggerUrl"]
            await asyncio.sleep(0.1)
    raise RuntimeError("no page target in Chromium")


if __name__ == "__main__":
    main()
