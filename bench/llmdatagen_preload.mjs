// Node `--import` preload used by bench/bench_generation.py to point llm-data-gen 1.1.8 at the fake OpenRouter.
// llm-data-gen hard-codes `https://openrouter.ai/api/v1` (lib/apiClient.js:8) and calls the global `fetch`, so this
// wraps `globalThis.fetch`: any request for `https://openrouter.ai/...` goes to `LLMDATAGEN_FAKE_BASE` (e.g.
// `http://127.0.0.1:PORT`) with the same path, query, method, headers and body; any other non-loopback URL is
// refused, so the benchmark can never reach the real provider.
const base = process.env.LLMDATAGEN_FAKE_BASE;
if (!base) {
  throw new Error('LLMDATAGEN_FAKE_BASE is not set (e.g. http://127.0.0.1:18080)');
}
const target = new URL(base);
const realFetch = globalThis.fetch;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

globalThis.fetch = async function fetchViaFake(input, init) {
  const isRequest = typeof Request !== 'undefined' && input instanceof Request;
  const url = new URL(isRequest ? input.url : String(input));
  if (url.hostname === 'openrouter.ai') {
    url.protocol = target.protocol;
    url.host = target.host;
    return realFetch(isRequest ? new Request(url, input) : url, init);
  }
  if (!LOOPBACK.has(url.hostname)) {
    throw new Error(`llmdatagen_preload: refusing non-loopback request to ${url.href}`);
  }
  return realFetch(input, init);
};
