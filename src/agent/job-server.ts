// Asking an HTTP package server about a package: whether a restored LwM2M job still matters, and the default
// self-test's "the server answers". A HEAD costs the server no body.

import type { Clock, HttpClient, Logger, Url } from "../platform/ports";

/** Sends a HEAD and reports the status code, or the error message when no answer came. */
export function headStatus(http: HttpClient, url: Url, answer: (status: number | string) => void): void {
	let answered = false;
	const reply = (status: number | string) => {
		if (answered) return;
		answered = true;
		answer(status);
	};
	try {
		const exchange = http.request("HEAD", url, [], {
			status: (code) => { exchange.close(); reply(code); },
			header() {},
			headersComplete() {},
			body() {},
			complete() {},
			error: (message) => reply(message),
		});
	}
	catch (error) {
		reply((error as Error).message);
	}
}

/**
	Whether the server still offers the package: 404 and 410 say it was withdrawn, any other answer that it
	is there. Without an answer (no network, 408, 429, 5xx) it asks again after a doubling delay, up to
	`tries` times; then it answers "known" and lets the download's own retries and Update Result decide, so an
	unreachable server never leaves a job waiting forever. Returns how to stop asking.
*/
export function confirmPackage(ports: { http: HttpClient; clock: Clock; log: Logger }, url: Url, retryMs: number, tries: number,
	answer: (known: boolean) => void): () => void {
	let stopped = false, timer: unknown;
	const ask = (attempt: number) => headStatus(ports.http, url, (status) => {
		if (stopped) return;
		if (status === 404 || status === 410) return answer(false);
		if (typeof status === "number" && status !== 408 && status !== 429 && status < 500) return answer(true);
		if (attempt >= tries) {
			ports.log(`package server not reached (${status}): resuming without its word`);
			return answer(true);
		}
		const delay = retryMs * 2 ** (attempt - 1);
		ports.log(`package server not reached (${status}): asking again in ${delay} ms`);
		timer = ports.clock.setTimeout(() => ask(attempt + 1), delay);
	});
	ask(1);
	return () => {
		stopped = true;
		ports.clock.clearTimeout(timer);
	};
}
