/*
	An HTTP(S) pull: the response body → inactive slot, with checkpoints in the record.

	One download runs as a series of exchanges (requests):
	  request(from the bytes known on flash) → headers → decide (resume.ts)
	    resume / fresh → stream the body into the slot → complete      → done(ok)
	    complete (416 at the end)                                       → done(ok)
	    redirect → next exchange to Location (at most maxRedirects)
	    restart  → next exchange from 0 without validators
	    retry / broken body / stall → wait (exponential backoff with jitter) → next exchange
	    tls failure (lib/tls-failure.ts) → the same wait; maxTlsAttempts in a row → done(7, the tls reason)
	    fail, or retries used up                                         → done(failure)
	A redirect may go from http to https, never from https to http.

	Flash discipline: the erase plan (erase-plan.ts) erases ahead of each write, a 64 KiB block at a time where
	no byte of the block is committed, so after a cut the sectors past the checkpoint are erased again before
	they are rewritten and the committed ones never. The record's committed offset only ever names bytes
	already written, and only advances at checkpoint boundaries (a multiple of the sector size), so a cut
	re-fetches at most one checkpoint interval. Before the first write of a body that starts at 0, the record is
	saved with the new ETag and offset 0: bytes of a new file are never paired with an old file's checkpoint.
*/

import type { Clock, FlashSlot, HttpClient, HttpExchange, HttpHandler, Logger, Url } from "../platform/ports";
import { Result, type ResultCode } from "../agent/firmware-object";
import { ErasePlan } from "../agent/erase-plan";
import type { DownloadRecord } from "../agent/record";
import { decide, isStrongEtag, requestHeaders, type ServerAnswer } from "../agent/resume";
import { formatUrl, resolveLocation } from "../agent/url";
import { isTlsFailure } from "../lib/tls-failure";
import { PatchSink, type PatchPorts } from "../delta/patch-sink";
import { isPatchStart } from "../delta/patch-header";
import { Checkpoints, type DownloadListener, type DownloadOptions, type Transfer, retryDelay } from "./transfer";

export interface HttpPullPorts {
	http: HttpClient;
	slot: FlashSlot;
	clock: Clock;
	log: Logger;
	/** Where a package that is a patch is applied from; without it every package is an image. */
	patch?: PatchPorts;
}

/** Retry-After (RFC 9110 §10.2.3) in ms from now: delay-seconds, or an HTTP-date once the clock is set. */
export function retryAfterMs(value: string, now: number): number {
	if (/^\s*\d{1,9}\s*$/.test(value)) return Number(value) * 1000;
	const at = Date.parse(value);
	// A wall clock that SNTP never set (1970) cannot place a date.
	return Number.isFinite(at) && now > 1e12 ? Math.max(0, at - now) : 0;
}

export class HttpPull implements HttpHandler, Transfer {
	#ports: HttpPullPorts;
	#options: DownloadOptions;
	#record: DownloadRecord;
	#listener: DownloadListener;
	#url: Url;
	#exchange: HttpExchange | undefined;
	#answer: ServerAnswer = { status: 0, etag: undefined, contentEncoding: undefined, contentRange: undefined, contentLength: undefined, location: undefined };
	#chunked = false;
	/** The server's Retry-After, in ms (0: none), for the next wait. */
	#retryAfterMs = 0;
	#writing = false;
	#offset = 0;
	#erasing: ErasePlan;
	#known = 0;
	#redirects = 0;
	#failures = 0;
	#tlsFailures = 0;
	#checkpoints: Checkpoints;
	#restarts = 0;
	#received = 0;
	#receivedAtLastCheck = 0;
	#waitTimer: unknown;
	#stallTimer: unknown;
	#finished = false;
	/** The package is a patch (decided by its first byte, or by the record on resume). */
	#patch: PatchSink | undefined;
	#patchMode = false;
	/** The next body byte is the package's first: it decides whether the package is a patch. */
	#sniff = false;

	constructor(ports: HttpPullPorts, options: DownloadOptions, record: DownloadRecord, url: Url, listener: DownloadListener) {
		this.#ports = ports;
		this.#options = options;
		this.#record = record;
		this.#url = url;
		this.#listener = listener;
		const sector = ports.slot.sectorSize;
		// Trust only whole sectors of the checkpoint: a partly written sector is erased and fetched again.
		this.#erasing = new ErasePlan(ports.slot, (index) => (index + 1) * sector <= record.committed);
		this.#erasing.setImageSize(record.totalSize);
		this.#known = record.committed - (record.committed % sector);
		if (record.totalSize && record.committed === record.totalSize) this.#known = record.committed;
		this.#checkpoints = new Checkpoints(options.checkpointBytes, this.#known);
		if (ports.patch) this.#patch = new PatchSink(ports.patch, record, options.checkpointBytes, () => listener.save());
		this.#patchMode = record.patch !== undefined && this.#patch !== undefined;
	}

	start(): void {
		if (this.#patchMode && this.#patch!.done) return this.#finish();
		this.#request();
	}

	/** Stops without touching the record: what is committed stays committed. */
	stop(): void {
		this.#finished = true;
		this.#closeExchange();
		this.#clearTimers();
	}

	suspend(): void {
		const record = this.#record;
		// Everything on flash belongs to the record's ETag (a fresh body saved it before its first write).
		if (this.#writing && !this.#patchMode && this.#offset > record.committed) record.committed = this.#offset;
		this.stop();
		this.#listener.save();
	}

	#request(): void {
		// A patch continues from its last checkpoint, whatever this power-on applied past it.
		if (this.#patchMode) this.#known = this.#patch!.resumeOffset();
		const checkpoint = { committed: this.#known, etag: this.#record.etag, totalSize: this.#record.totalSize };
		const answer = this.#answer;
		answer.status = 0;
		answer.etag = answer.contentEncoding = answer.contentRange = answer.location = undefined;
		answer.contentLength = undefined;
		this.#chunked = false;
		this.#retryAfterMs = 0;
		this.#writing = false;
		this.#ports.log(`get ${formatUrl(this.#url)} from ${this.#known}`);
		this.#watchForStall();
		try {
			this.#exchange = this.#ports.http.request("GET", this.#url, requestHeaders(checkpoint), this);
		}
		catch (error) {
			this.#exchange = undefined;
			const message = (error as Error).message;
			this.error(isTlsFailure(message) ? message : `request failed: ${message}`);
		}
	}

	status(code: number): void {
		this.#answer.status = code;
		// The server answered: whatever failed before was not its certificate.
		this.#tlsFailures = 0;
	}

	header(name: string, value: string): void {
		const answer = this.#answer;
		if (name === "etag") answer.etag = value;
		else if (name === "content-range") answer.contentRange = value;
		else if (name === "location") answer.location = value;
		else if (name === "content-encoding") answer.contentEncoding = value;
		else if (name === "transfer-encoding") this.#chunked = true;
		else if (name === "retry-after") this.#retryAfterMs = retryAfterMs(value, this.#ports.clock.now());
		else if (name === "content-length") {
			const length = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
			answer.contentLength = Number.isSafeInteger(length) ? length : -1;
		}
	}

	headersComplete(): void {
		const answer = this.#answer;
		// RFC 9112 §6.3: a transfer coding overrides Content-Length, which then says nothing about the body.
		if (this.#chunked) answer.contentLength = undefined;
		if (answer.contentLength === -1)
			return this.#transientFailure("bad content-length");
		const checkpoint = { committed: this.#known, etag: this.#record.etag, totalSize: this.#record.totalSize };
		const decision = decide(checkpoint, answer);
		switch (decision.kind) {
			case "resume":
				this.#offset = this.#known;
				this.#writing = true;
				return;
			case "fresh":
				return this.#beginFresh(decision.totalSize);
			case "complete":
				return this.#finish();
			case "redirect": {
				this.#closeExchange();
				if (++this.#redirects > this.#options.maxRedirects)
					return this.#fail(Result.invalidUri, "too many redirects");
				const next = resolveLocation(this.#url, decision.location);
				if (typeof next === "string") return this.#fail(Result.invalidUri, `bad redirect: ${next}`);
				if (next.scheme !== "http" && next.scheme !== "https") return this.#fail(Result.unsupportedProtocol, `redirect to ${next.scheme}`);
				if (this.#url.scheme === "https" && next.scheme !== "https") return this.#fail(Result.invalidUri, "redirect from https to http refused");
				this.#url = next;
				return this.#request();
			}
			case "restart":
				this.#ports.log(`restart: ${decision.reason}`);
				this.#closeExchange();
				this.#known = 0;
				// A server that keeps contradicting itself is treated as a failing one.
				if (++this.#restarts > 2) return this.#transientFailure(decision.reason);
				return this.#request();
			case "retry":
				return this.#transientFailure(decision.reason);
			case "fail":
				return this.#fail(decision.result, decision.reason);
		}
	}

	#beginFresh(totalSize: number): void {
		if (totalSize > this.#ports.slot.byteLength)
			return this.#fail(Result.notEnoughFlash, `${totalSize} bytes do not fit the ${this.#ports.slot.byteLength} byte slot`);
		const record = this.#record;
		record.etag = isStrongEtag(this.#answer.etag) ? this.#answer.etag : "";
		record.totalSize = totalSize;
		record.committed = 0;
		this.#listener.save();
		this.#known = this.#offset = 0;
		this.#erasing.reset();
		this.#erasing.setImageSize(totalSize);
		this.#patch?.fresh();
		this.#patchMode = false;
		this.#sniff = true;
		this.#writing = true;
	}

	body(chunk: ArrayBuffer): void {
		if (!this.#writing) return;
		const length = chunk.byteLength, end = this.#offset + length;
		const slot = this.#ports.slot, record = this.#record;
		this.#received += length;
		if (this.#sniff && length) {
			this.#sniff = false;
			this.#patchMode = this.#patch !== undefined && isPatchStart(new Uint8Array(chunk, 0, 1)[0]);
		}
		if (this.#patchMode) return this.#bodyOfPatch(chunk, end);
		if (end > slot.byteLength)
			return this.#fail(Result.notEnoughFlash, "image larger than the slot");
		if (record.totalSize && end > record.totalSize)
			return this.#transientFailure("body longer than announced");
		this.#erasing.prepare(this.#offset, end);
		slot.write(this.#offset, length, chunk);
		this.#offset = this.#known = end;
		const step = this.#checkpoints.advance(record, end);
		if (step === "none") return;
		if (step === "further") this.#failures = 0;
		this.#listener.save();
		this.#listener.progress(end, record.totalSize);
	}

	#bodyOfPatch(chunk: ArrayBuffer, end: number): void {
		const record = this.#record;
		if (record.totalSize && end > record.totalSize)
			return this.#transientFailure("body longer than announced");
		const failure = this.#patch!.write(new Uint8Array(chunk));
		if (failure) return this.#fail(failure.result, failure.reason);
		this.#offset = end;
		if (record.committed > this.#known) {
			this.#known = record.committed;
			this.#failures = 0;
			this.#listener.progress(end, record.totalSize);
		}
	}

	complete(): void {
		if (!this.#writing) return;
		if (this.#patchMode) {
			const failure = this.#patch!.finish();
			return failure ? this.#fail(failure.result, failure.reason) : this.#finish();
		}
		const record = this.#record;
		if (record.totalSize && this.#offset !== record.totalSize)
			return this.#transientFailure(`body ended at ${this.#offset} of ${record.totalSize}`);
		if (!record.totalSize) record.totalSize = this.#offset;
		this.#finish();
	}

	error(message: string): void {
		if (this.#finished) return;
		// The same server fails the same handshake again: a few tries (a captive portal may pass), then a reason.
		this.#tlsFailures = isTlsFailure(message) ? this.#tlsFailures + 1 : 0;
		if (this.#tlsFailures >= this.#options.maxTlsAttempts) return this.#fail(Result.invalidUri, message);
		this.#transientFailure(message);
	}

	#finish(): void {
		const record = this.#record;
		this.#closeExchange();
		this.#clearTimers();
		this.#finished = true;
		record.committed = record.totalSize;
		this.#listener.progress(record.committed, record.totalSize);
		this.#listener.done({ ok: true });
	}

	#fail(result: ResultCode, reason: string): void {
		this.#closeExchange();
		this.#clearTimers();
		this.#finished = true;
		this.#listener.done({ ok: false, result, reason });
	}

	#transientFailure(reason: string): void {
		this.#closeExchange();
		if (this.#finished) return;
		const failures = ++this.#failures;
		this.#record.attempts++;
		if (failures >= this.#options.maxAttempts)
			return this.#fail(Result.connectionLost, `${reason}; gave up after ${failures} attempts`);
		const delay = retryDelay(failures, this.#options, this.#retryAfterMs);
		this.#ports.log(`${reason}; retry in ${delay} ms`);
		this.#restarts = 0;
		this.#redirects = 0;
		this.#waitTimer = this.#ports.clock.setTimeout(() => {
			this.#waitTimer = undefined;
			this.#request();
		}, delay);
	}

	/** Each exchange gets a whole stall interval, however far the previous one's interval had run. */
	#watchForStall(): void {
		const { clock } = this.#ports;
		if (this.#stallTimer !== undefined) clock.clearTimeout(this.#stallTimer);
		this.#receivedAtLastCheck = this.#received;
		this.#stallTimer = clock.setTimeout(() => this.#checkStall(), this.#options.stallMs);
	}

	#checkStall(): void {
		if (this.#finished) return;
		if (this.#exchange && this.#received === this.#receivedAtLastCheck)
			this.#transientFailure("stalled");
		this.#receivedAtLastCheck = this.#received;
		this.#stallTimer = this.#ports.clock.setTimeout(() => this.#checkStall(), this.#options.stallMs);
	}

	#closeExchange(): void {
		this.#writing = false;
		const exchange = this.#exchange;
		this.#exchange = undefined;
		exchange?.close();
	}

	#clearTimers(): void {
		if (this.#waitTimer !== undefined) this.#ports.clock.clearTimeout(this.#waitTimer);
		if (this.#stallTimer !== undefined) this.#ports.clock.clearTimeout(this.#stallTimer);
		this.#waitTimer = this.#stallTimer = undefined;
	}
}
