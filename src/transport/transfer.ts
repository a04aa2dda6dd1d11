// The shape every transport has: a Transfer brings a package into the inactive slot and reports to a
// DownloadListener; the pulls share the retry timing (retryDelay) and the checkpoint rule (Checkpoints).

import type { ResultCode } from "../agent/firmware-object";
import type { DownloadRecord } from "../agent/record";

export interface DownloadOptions {
	/** Bytes between checkpoints; a multiple of the sector size. */
	checkpointBytes: number;
	maxRedirects: number;
	/** Exchanges that may fail in a row before the download gives up with result 4. */
	maxAttempts: number;
	/** Secure connections that may fail in a row, each for a "tls: " reason, before the download gives up with 7. */
	maxTlsAttempts: number;
	backoffBaseMs: number;
	backoffMaxMs: number;
	/** An exchange that receives nothing for this long is abandoned and retried. */
	stallMs: number;
	random: () => number;
}

export const defaultDownloadOptions: DownloadOptions = {
	checkpointBytes: 16384,
	maxRedirects: 5,
	maxAttempts: 8,
	maxTlsAttempts: 3,
	backoffBaseMs: 1000,
	backoffMaxMs: 60000,
	stallMs: 30000,
	random: Math.random,
};

export type DownloadOutcome = { ok: true } | { ok: false; result: ResultCode; reason: string };

export interface DownloadListener {
	/** Persist the record (offset, ETag, size changed). */
	save(): void;
	progress(received: number, total: number): void;
	done(outcome: DownloadOutcome): void;
}

/** One way of bringing a package into the slot: an HTTP pull (Download) or an MQTT stream. */
export interface Transfer {
	start(): void;
	/** Stops without touching the record: what is committed stays committed. */
	stop(): void;
	/** Stops and saves everything already written (an orderly shutdown loses nothing past the last sector). */
	suspend(): void;
}

/** Exponential backoff with jitter after `failures` failures in a row. A server that says when to come back
 * (`retryAfterMs`, 0 for no word) is believed, within the backoff's ceiling. */
export function retryDelay(failures: number, options: DownloadOptions, retryAfterMs: number): number {
	const { backoffBaseMs, backoffMaxMs, random } = options;
	const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** (failures - 1));
	return Math.max(Math.round(ceiling / 2 + (random() * ceiling) / 2), Math.min(retryAfterMs, backoffMaxMs));
}

/**
	The checkpoint of a transfer that writes front to back: it moves to the last interval boundary once a whole
	interval passed. Only passing the furthest checkpoint of the download counts as progress that forgives
	failures: a server that starts over every time (no range, no validator) and drops at the same place would
	otherwise pass the same checkpoint again and again and never run out of retries.
*/
export class Checkpoints {
	#interval: number;
	#furthest: number;

	constructor(interval: number, furthest: number) {
		this.#interval = interval;
		this.#furthest = furthest;
	}

	/** Bytes up to `end` are on flash: "none", "moved" (save the record), or "further" (moved past every earlier one). */
	advance(record: DownloadRecord, end: number): "none" | "moved" | "further" {
		const interval = this.#interval;
		if (end - record.committed < interval) return "none";
		record.committed = end - (end % interval);
		if (record.committed <= this.#furthest) return "moved";
		this.#furthest = record.committed;
		return "further";
	}
}
