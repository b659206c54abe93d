#!/usr/bin/env python3
"""Drive fal's official Python client (`pip install fal-client`) against the local emulator.

Usage: EMULATOR_URL=http://127.0.0.1:PORT [EMULATOR_CDN_URL=...] FAL_KEY=x:y \
       python3 fal_client_check.py [full|retry]

The client hard-codes https:// fal hosts, so the module-level URL constants are patched to the
emulator's base URL before any client is used. Exit code 0 = all checks passed; 3 = fal_client is
not importable (the Rust wrapper decides whether that is a skip or a failure).
"""

import base64
import io
import os
import struct
import sys
import tempfile
import zlib

try:
    import fal_client
    import fal_client.client as fc
    import httpx
except ImportError as e:  # pragma: no cover - reported by the Rust wrapper
    print(f"fal_client not importable: {e}", file=sys.stderr)
    sys.exit(3)

BASE = os.environ["EMULATOR_URL"].rstrip("/")
CDN = os.environ.get("EMULATOR_CDN_URL", BASE).rstrip("/")
APP = "fal-ai/flux-pro/kontext/multi"

# Route every official host to the emulator (the run host lives under /run on one base URL).
fc.QUEUE_URL_FORMAT = BASE + "/"
fc.RUN_URL_FORMAT = BASE + "/run/"
fc.REST_URL = BASE
fc.CDN_URL = CDN
for name in ("QUEUE_URL_FORMAT", "RUN_URL_FORMAT", "REST_URL", "CDN_URL"):
    assert getattr(fc, name).startswith("http://127."), name


def png_bytes(w: int, h: int) -> bytes:
    """A tiny valid RGB PNG without third-party imaging libraries."""
    raw = b"".join(
        b"\x00" + bytes(v for x in range(w) for v in (x * 9 % 256, y * 7 % 256, 120)) for y in range(h)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print(f"ok: {msg}")


def fetch(url: str) -> httpx.Response:
    with httpx.Client(trust_env=False) as c:
        return c.get(url)


def assert_output(result, n=1):
    check(isinstance(result, dict) and len(result["images"]) == n, f"{n} image(s) in output")
    for img in result["images"]:
        check(img["url"].startswith(CDN + "/files/"), f"image URL on the emulator CDN: {img['url']}")
        r = fetch(img["url"])
        check(r.status_code == 200 and r.headers["content-type"] == img["content_type"], "image served")
    check(result["has_nsfw_concepts"] == [False] * n, "has_nsfw_concepts")
    check(isinstance(result["seed"], int), "seed is an int")


def full() -> None:
    key = os.environ.get("FAL_KEY", "emulator:key")
    client = fal_client.SyncClient(key=key)
    inputs = [data_uri(png_bytes(16, 12)), data_uri(png_bytes(8, 8))]

    # 1. subscribe with logs and queue updates (module-level API, key from FAL_KEY).
    updates = []
    result = fal_client.subscribe(
        APP,
        arguments={"prompt": "put the duck on the shirt", "image_urls": inputs, "seed": 42},
        with_logs=True,
        on_queue_update=updates.append,
    )
    assert_output(result)
    check(result["seed"] == 42 and result["prompt"] == "put the duck on the shirt", "seed/prompt echoed")
    check(isinstance(updates[-1], fal_client.Completed), "last update is Completed")
    in_progress = [u for u in updates if isinstance(u, fal_client.InProgress)]
    check(len(in_progress) > 0, "saw InProgress updates")
    logs = updates[-1].logs or []
    check(any("Fetched image 1/2" in l["message"] for l in logs), "runner logs delivered")

    # 2. submit + status + result (handle and request-id forms).
    handle = client.submit(APP, arguments={"prompt": "p", "image_urls": inputs, "num_images": 2})
    st = handle.status(with_logs=True)
    check(isinstance(st, (fal_client.Queued, fal_client.InProgress, fal_client.Completed)), f"status parsed: {st}")
    res = handle.get()
    assert_output(res, 2)
    done = client.status(APP, handle.request_id, with_logs=False)
    check(isinstance(done, fal_client.Completed) and done.logs is None, "Completed, logs None without logs")
    check(client.result(APP, handle.request_id) == res, "result() equals get()")
    same = client.get_handle(APP, handle.request_id) if hasattr(client, "get_handle") else None
    if same is not None:
        check(same.get() == res, "handle rebuilt from request id")

    # 3. cancel right after submit → cancelled; result raises the flat error.
    h2 = client.submit(APP, arguments={"prompt": "p", "image_urls": inputs})
    h2.cancel()
    print("ok: cancel accepted")
    try:
        h2.get()
        raise AssertionError("result of a cancelled request should fail")
    except fal_client.FalClientHTTPError as e:
        check(e.status_code == 499, f"cancelled result is 499: {e.status_code}")
    final = client.status(APP, h2.request_id)
    check(isinstance(final, fal_client.Completed) and getattr(final, "error_type", None) == "client_cancelled",
          "Completed with client_cancelled")
    try:
        h2.cancel()
        raise AssertionError("cancel after completion should fail")
    except fal_client.FalClientHTTPError as e:
        check(e.status_code == 400, "second cancel is 400 ALREADY_COMPLETED")

    # 4. upload_file (default repository: CDN token flow) and use it as an input via run().
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as f:
        f.write(png_bytes(20, 10))
        path = f.name
    try:
        url = client.upload_file(path)
    finally:
        os.unlink(path)
    check(url.startswith(CDN + "/files/") and url.endswith(os.path.basename(path)), f"uploaded: {url}")
    check(fetch(url).content == png_bytes(20, 10), "uploaded bytes served back")
    url_a = client.upload(b"hello", "text/plain", file_name="a.txt", repository="fal")
    check(fetch(url_a).text == "hello", "initiate/PUT flow (repository='fal') works")

    out = client.run(APP, arguments={"prompt": "p", "image_urls": [url], "aspect_ratio": "16:9"})
    assert_output(out)
    check(out["images"][0]["width"] > out["images"][0]["height"], "16:9 output is landscape")

    # 5. validation errors: 422 with the pydantic-style detail list.
    try:
        client.run(APP, arguments={"prompt": "p", "image_urls": [url], "num_images": 9})
        raise AssertionError("num_images=9 should be rejected")
    except fal_client.FalClientHTTPError as e:
        check(e.status_code == 422, "run() 422")
        check(isinstance(e.message, list) and e.message[0]["loc"] == ["body", "num_images"], f"detail: {e.message}")
    h3 = client.submit(APP, arguments={"prompt": "p", "image_urls": []})
    try:
        h3.get()
        raise AssertionError("empty image_urls should be rejected at result")
    except fal_client.FalClientHTTPError as e:
        check(e.status_code == 422, "queued validation error surfaces at result as 422")

    # 6. sync_mode returns a data URI.
    out = client.run(APP, arguments={"prompt": "p", "image_urls": inputs, "sync_mode": True, "output_format": "png"})
    check(out["images"][0]["url"].startswith("data:image/png;base64,"), "sync_mode data URI")


def family() -> None:
    """Other endpoints of the family: owner/alias routing for status and result URLs, one
    image_url, [dev]'s fields and output, a 422 naming that endpoint's own field."""
    key = os.environ.get("FAL_KEY", "emulator:key")
    client = fal_client.SyncClient(key=key)
    image = data_uri(png_bytes(16, 12))

    handle = client.submit("fal-ai/flux-pro/kontext/max", arguments={"prompt": "harder edit", "image_url": image})
    res = handle.get()
    assert_output(res)
    check("/fal-ai/flux-pro/requests/" in handle.response_url, f"owner/alias result URL: {handle.response_url}")

    dev = fal_client.subscribe(
        "fal-ai/flux-kontext/dev",
        arguments={"prompt": "dev edit", "image_url": image, "num_inference_steps": 12, "resolution_mode": "1:1"},
    )
    assert_output(dev)
    img = dev["images"][0]
    check(img["width"] == img["height"] and img["file_size"] > 0 and "file_name" in img, f"[dev] output: {img}")
    try:
        client.run("fal-ai/flux-kontext/dev", arguments={"prompt": "p", "image_url": image, "acceleration": "max"})
        raise AssertionError("acceleration=max should be rejected")
    except fal_client.FalClientHTTPError as e:
        check(e.status_code == 422 and e.message[0]["loc"] == ["body", "acceleration"], f"[dev] 422: {e.message}")

    t2i = client.run("fal-ai/flux-pro/kontext/text-to-image", arguments={"prompt": "a first image"})
    assert_output(t2i)
    check(t2i["images"][0]["width"] == t2i["images"][0]["height"], "text-to-image defaults to 1:1")


def retry() -> None:
    """Run against an emulator with transient faults: the client must retry them away."""
    result = fal_client.subscribe(
        APP, arguments={"prompt": "p", "image_urls": [data_uri(png_bytes(8, 8))]}, with_logs=True
    )
    assert_output(result)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    {"full": full, "retry": retry, "family": family}[mode]()
    print(f"ALL OK ({mode}, fal_client {fal_client.__version__})")
