// Drive fal's official JS client (@fal-ai/client) against the local emulator.
//
// Usage: EMULATOR_URL=http://127.0.0.1:PORT NODE_PATH=<dir with node_modules/@fal-ai/client> \
//        node fal_js_check.cjs
// The client hard-codes https://{queue.,}fal.run and https://rest.fal.ai; a custom `fetch`
// rewrites those to the emulator and refuses anything that is not loopback.
// Exit 0 = all checks passed; 3 = @fal-ai/client not resolvable.

let falMod;
try {
  falMod = require("@fal-ai/client");
} catch (e) {
  console.error(`@fal-ai/client not resolvable: ${e.message}`);
  process.exit(3);
}
const { createFalClient, ApiError, ValidationError } = falMod;

const BASE = process.env.EMULATOR_URL.replace(/\/$/, "");
const APP = "fal-ai/flux-pro/kontext/multi";

function rewrite(url) {
  const u = String(url);
  const map = [
    ["https://queue.fal.run/", `${BASE}/`],
    ["https://fal.run/", `${BASE}/run/`],
    ["https://rest.fal.ai/", `${BASE}/`],
  ];
  for (const [from, to] of map) {
    if (u.startsWith(from)) return to + u.slice(from.length);
  }
  if (!/^http:\/\/127\.\d+\.\d+\.\d+(:\d+)?\//.test(u)) {
    throw new Error(`refusing non-loopback URL ${u}`);
  }
  return u;
}

const fal = createFalClient({
  credentials: "emulator-id:emulator-secret",
  fetch: (input, init) => {
    if (typeof input === "string" || input instanceof URL) {
      return globalThis.fetch(rewrite(input), init);
    }
    return globalThis.fetch(new Request(rewrite(input.url), input), init);
  },
});

function check(cond, msg) {
  if (!cond) throw new Error(`FAILED: ${msg}`);
  console.log(`ok: ${msg}`);
}

function pngDataUri() {
  // 1x1 red PNG.
  return "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
}

async function main() {
  const input = { prompt: "p", image_urls: [pngDataUri()], seed: 5 };

  // subscribe, polling mode, with logs.
  const updates = [];
  const r1 = await fal.subscribe(APP, {
    input,
    logs: true,
    pollInterval: 20,
    onQueueUpdate: (u) => updates.push(u),
  });
  check(r1.data.images.length === 1 && r1.data.seed === 5, "subscribe (polling) result");
  check(typeof r1.requestId === "string" && r1.requestId.length === 36, "requestId from x-fal-request-id");
  check(updates.some((u) => u.status === "IN_PROGRESS"), "IN_PROGRESS update seen");
  check(updates[updates.length - 1].status === "COMPLETED", "last update COMPLETED");

  // subscribe, streaming mode (SSE), logs accumulated by the client.
  const streamed = [];
  const r2 = await fal.subscribe(APP, {
    input,
    logs: true,
    mode: "streaming",
    onQueueUpdate: (u) => streamed.push(u),
  });
  check(r2.data.images.length === 1, "subscribe (streaming) result");
  const last = streamed[streamed.length - 1];
  check(last && last.status === "COMPLETED", "stream ended with COMPLETED");
  check((last.logs || []).some((l) => l.message.startsWith("Fetched image 1/1")), "streamed logs accumulated");

  // submit / status / result / cancel.
  const { request_id } = await fal.queue.submit(APP, { input });
  const st = await fal.queue.status(APP, { requestId: request_id, logs: true });
  check(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].includes(st.status), `status ${st.status}`);
  const sub2 = await fal.queue.submit(APP, { input });
  await fal.queue.cancel(APP, { requestId: sub2.request_id });
  console.log("ok: cancel accepted");
  await new Promise((r) => setTimeout(r, 400));
  const res = await fal.queue.result(APP, { requestId: request_id });
  check(res.data.images.length === 1, "queue.result");
  try {
    await fal.queue.result(APP, { requestId: sub2.request_id });
    throw new Error("FAILED: cancelled result should fail");
  } catch (e) {
    check(e instanceof ApiError && e.status === 499, `cancelled result is ApiError 499 (${e.status})`);
  }

  // storage upload (initiate + PUT) and use as input.
  const blob = new Blob([Buffer.from(pngDataUri().split(",")[1], "base64")], { type: "image/png" });
  const url = await fal.storage.upload(blob);
  check(url.startsWith(`${BASE}/files/`), `uploaded ${url}`);
  const run = await fal.run(APP, { input: { prompt: "p", image_urls: [url], aspect_ratio: "9:16" } });
  check(run.data.images[0].height > run.data.images[0].width, "run() 9:16 output");

  // validation error.
  try {
    await fal.run(APP, { input: { prompt: "p", image_urls: [url], guidance_scale: 50 } });
    throw new Error("FAILED: guidance_scale=50 should fail");
  } catch (e) {
    check(e instanceof ValidationError && e.status === 422, "ValidationError 422");
    check(e.fieldErrors[0].loc.join(".") === "body.guidance_scale", "field error loc");
  }
  console.log("ALL OK (js)");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
