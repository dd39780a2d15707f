/**
 * Mailpit's link check: every http(s) link and image of a message's HTML and text body is
 * requested, and the answers reported, so a test can assert that a mail links to nothing broken.
 * A HEAD request first; a server that refuses HEAD (405, 501) gets a GET. Redirects are reported
 * as they are unless `follow` is set.
 */
import { decodeBasicEntities } from "../store/parse-message.ts";

export interface LinkStatus {
  URL: string;
  /** 0 when no HTTP answer came (refused, timed out, bad TLS). */
  StatusCode: number;
  /** The reason phrase, or what went wrong. */
  Status: string;
}

export interface LinkCheckResult {
  /** Links that answered 400 or more, or not at all. */
  Errors: number;
  Links: LinkStatus[];
}

/** Mailpit's limits: a few requests at once, each given a few seconds. */
const PARALLEL_REQUESTS = 5;
const REQUEST_TIMEOUT_MS = 10_000;

/** href and src attribute values (quoted), and bare URLs in text. */
const HTML_LINK = /\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;
const TEXT_LINK = /\bhttps?:\/\/[^\s<>"'()]+/gi;
/** Punctuation that ends a sentence rather than the URL in it. */
const TRAILING = /[.,;:!?]+$/;

/** The distinct http(s) URLs of a message's bodies, in the order they first appear. */
export function linksOf(html: string, text: string): string[] {
  const found: string[] = [];
  const add = (candidate: string) => {
    const url = decodeBasicEntities(candidate.trim());
    if (/^https?:\/\//i.test(url) && !found.includes(url)) found.push(url);
  };
  for (const match of html.matchAll(HTML_LINK)) add(match[1] ?? match[2] ?? "");
  for (const match of text.matchAll(TEXT_LINK)) add(match[0].replace(TRAILING, ""));
  return found;
}

export async function checkLinks(urls: readonly string[], follow: boolean): Promise<LinkCheckResult> {
  const links: LinkStatus[] = new Array(urls.length);
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const index = next++;
      const url = urls[index] ?? "";
      links[index] = { URL: url, ...(await statusOf(url, follow)) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_REQUESTS, urls.length) }, worker));
  return {
    Errors: links.filter((link) => link.StatusCode === 0 || link.StatusCode >= 400).length,
    Links: links,
  };
}

async function statusOf(url: string, follow: boolean): Promise<Omit<LinkStatus, "URL">> {
  try {
    let response = await request(url, "HEAD", follow);
    if (response.status === 405 || response.status === 501) response = await request(url, "GET", follow);
    return { StatusCode: response.status, Status: response.statusText || `HTTP ${response.status}` };
  } catch (error) {
    return { StatusCode: 0, Status: error instanceof Error ? error.message : String(error) };
  }
}

async function request(url: string, method: string, follow: boolean): Promise<Response> {
  const response = await fetch(url, {
    method,
    redirect: follow ? "follow" : "manual",
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  // Only the status matters; the body is not read.
  await response.body?.cancel();
  return response;
}
