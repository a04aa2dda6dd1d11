/*
	The job list: every update job the agent was given, not only the current download, persisted so that a
	reboot of any kind loses none of them.

	A job moves  downloading → downloaded [→ deferred] → installing → succeeded | failed | cancelled.
	The download record (record.ts) stays the authority for the job it holds, keyed by update id: after a cut
	between the record's save and the list's, load() takes that job's state from the record. Jobs the server
	no longer knows are dropped (and logged); finished jobs stay as history, the oldest removed first when the
	list outgrows its budget.

	Stored as the JSON array of the jobs, UTF-8, in chunks of at most 4000 bytes (the ESP32 preference value
	limit). Two generations, A and B, alternate like the download record's two copies: a save writes the older
	generation's chunks "jl.a0", "jl.a1"… and then its header "jl.a" (format, chunk count, sequence, byte
	length, CRC-32 of the JSON). A cut can only tear the generation being written, whose header then no longer
	matches its chunks, so load() falls back to the other, complete one.
*/

import type { KeyValueStore, Logger } from "../platform/ports";
import { crc32 } from "../lib/crc32";
import { utf8Length, utf8Read, utf8Write } from "../lib/utf8";
import { type ResultCode, type StateCode, Result, State, isFailure } from "./firmware-object";
import { type DownloadRecord, Source, policyNames, sequenceAfter } from "./record";

export type JobState = "downloading" | "downloaded" | "deferred" | "installing" | "succeeded" | "failed" | "cancelled";

export interface JobParameters {
	policy: string;
	automatic: boolean;
	severity: SeverityName;
	/** Longest the install may wait for a maintenance window, in seconds (LwM2M resource 13); 0 means no wait. */
	maxDeferSeconds: number;
}

export type SeverityName = "critical" | "major" | "minor";

/** In LwM2M's order: Severity (/5/0/11) 0 is critical, 1 major, 2 minor. */
export const severityNames: readonly SeverityName[] = ["critical", "major", "minor"];

export interface Job {
	id: string;
	/** "lwm2m": a Package URI write or push; "app": the app's own request, installed at once (config.update); "aws": an AWS IoT job execution. */
	source: "lwm2m" | "app" | "aws";
	/** The package: an http(s) or coap URI, "stream:<stream id>/<file id>", or "push" (written to /5/0/0). */
	uri: string;
	updateId: number;
	state: JobState;
	previousState: JobState;
	/** LwM2M Update Result at the last transition. */
	result: ResultCode;
	/** Wall-clock milliseconds (since 1970) of the last transition, of the verified download, of the install. */
	lastActivity: number;
	downloadTime: number;
	installTime: number;
	parameters: JobParameters;
	/** Why the job failed, as reported to the server (AWS statusDetails.reason); absent otherwise. */
	reason?: string;
}

export const jobListKeys = ["jl.a", "jl.b"] as const;
const listFormat = 1;
const chunkBytes = 4000;
/** Both generations, the record's two copies and the rest must fit the ESP32's 24 KB NVS partition. */
const maxListBytes = 5000;
const maxChunks = Math.ceil(maxListBytes / chunkBytes);
const headerBytes = 16;
/** A failure's reason is cut to this many characters: the list's budget holds every job's. */
const maxReasonLength = 120;
/** Finished jobs kept as history. */
const maxFinished = 8;

const finished: { [state: string]: boolean } = { succeeded: true, failed: true, cancelled: true };

export function isFinished(job: Job): boolean {
	return finished[job.state] === true;
}

/** The job state an Object 5 state and result stand for. */
export function jobStateOf(state: StateCode, result: ResultCode): JobState {
	switch (state) {
		case State.downloading: return "downloading";
		case State.downloaded: return result === Result.deferred ? "deferred" : "downloaded";
		case State.updating: return "installing";
	}
	if (result === Result.success) return "succeeded";
	if (result === Result.cancelled || result === Result.initial) return "cancelled";
	return isFailure(result) ? "failed" : "cancelled";
}

/** A new job for the request the record now holds. */
export function jobFor(record: DownloadRecord, parameters: Omit<JobParameters, "policy" | "automatic">, now: number): Job {
	// An LwM2M server's request waits for its Update; only the app asks for an automatic install.
	const source = record.jobId !== "" ? "aws" : record.automatic ? "app" : "lwm2m";
	const state = jobStateOf(record.state, record.result);
	return {
		id: source === "aws" ? record.jobId : `${source}-${record.updateId}`,
		source,
		uri: record.source === Source.awsStream ? `stream:${record.streamId}/${record.fileId}` : record.source === Source.push ? "push" : record.uri,
		updateId: record.updateId,
		state, previousState: state, result: record.result,
		lastActivity: now, downloadTime: 0, installTime: 0,
		parameters: { policy: policyNames[record.policy], automatic: record.automatic, ...parameters },
	};
}

export class JobList {
	#store: KeyValueStore;
	#log: Logger;
	#jobs: Job[] = [];
	#newest = -1;
	#sequence = 0;
	#persistent: boolean;

	/** A list that is not persistent (reboot persistence off) lives in RAM only, and forgets the stored one. */
	constructor(store: KeyValueStore, log: Logger, persistent: boolean) {
		this.#store = store;
		this.#log = log;
		this.#persistent = persistent;
	}

	get jobs(): readonly Job[] {
		return this.#jobs;
	}

	find(updateId: number): Job | undefined {
		return this.#jobs.find((job) => job.updateId === updateId);
	}

	/** Reads the newest complete generation; a torn or corrupt one is logged and ignored. */
	load(): readonly Job[] {
		if (!this.#persistent) {
			this.clear();
			return this.#jobs;
		}
		let newest: { jobs: Job[]; sequence: number } | undefined;
		for (let generation = 0; generation < jobListKeys.length; generation++) {
			const read = this.#read(generation);
			if (typeof read === "string") {
				if (read) this.#log(`job list ${jobListKeys[generation]} discarded: ${read}`);
				continue;
			}
			if (!newest || sequenceAfter(read.sequence, newest.sequence)) {
				newest = read;
				this.#newest = generation;
			}
		}
		this.#jobs = newest?.jobs ?? [];
		this.#sequence = newest?.sequence ?? 0;
		return this.#jobs;
	}

	/** Adds a job (replacing one with the same update id) and saves. */
	add(job: Job): void {
		this.#jobs = this.#jobs.filter((other) => other.updateId !== job.updateId);
		this.#jobs.push(job);
		this.save();
	}

	/** Moves a job to the state the record now holds, with the reason of a failure; saves when anything changed. */
	follow(record: DownloadRecord, now: number, reason = ""): void {
		const job = this.find(record.updateId);
		if (!job) return;
		const state = jobStateOf(record.state, record.result);
		if (job.state === state && job.result === record.result) return;
		if (job.state !== state) job.previousState = job.state;
		job.state = state;
		job.result = record.result;
		if (reason && isFailure(record.result)) job.reason = reason.slice(0, maxReasonLength);
		else delete job.reason;
		job.lastActivity = now;
		if (state === "downloaded" || (state === "deferred" && !job.downloadTime)) job.downloadTime = now;
		if (state === "installing") job.installTime = now;
		this.save();
	}

	/** Removes a job the server no longer knows (or that its policy forgets), and says why in the log. */
	drop(updateId: number, reason: string): void {
		const job = this.find(updateId);
		if (!job) return;
		this.#log(`job ${job.id} dropped: ${reason}`);
		this.#jobs = this.#jobs.filter((other) => other !== job);
		this.save();
	}

	/** Forgets every job (reboot persistence off): headers first, so no half-deleted generation looks whole. */
	clear(): void {
		this.#jobs = [];
		for (const key of jobListKeys) {
			const keys: string[] = [key];
			for (let i = 0; i < maxChunks; i++) keys.push(`${key}${i}`);
			for (const name of keys) if (this.#store.get(name) !== undefined) this.#store.delete(name);
		}
		this.#newest = -1;
	}

	/** Writes the list over the older generation, chunks first and header last. */
	save(): void {
		const text = this.#trimmed();
		if (!this.#persistent) return;
		const length = utf8Length(text);
		const bytes = new Uint8Array(length);
		utf8Write(text, bytes, 0);
		const chunks = Math.max(1, Math.ceil(length / chunkBytes));
		const generation = this.#newest === 0 ? 1 : 0;
		const key = jobListKeys[generation];
		for (let i = 0; i < chunks; i++)
			this.#store.set(`${key}${i}`, bytes.slice(i * chunkBytes, Math.min(length, (i + 1) * chunkBytes)).buffer);
		const header = new Uint8Array(headerBytes);
		const view = new DataView(header.buffer);
		this.#sequence = (this.#sequence + 1) >>> 0;
		header[0] = listFormat;
		header[1] = chunks;
		view.setUint32(4, this.#sequence, true);
		view.setUint32(8, length, true);
		view.setUint32(12, crc32(bytes, 0, length), true);
		this.#store.set(key, header.buffer);
		this.#newest = generation;
	}

	/** Keeps at most maxFinished finished jobs, dropping the oldest finished ones until the list fits; returns its JSON. */
	#trimmed(): string {
		let finishedCount = 0;
		for (const job of this.#jobs) if (isFinished(job)) finishedCount++;
		for (; finishedCount > maxFinished; finishedCount--) this.#jobs.splice(this.#jobs.findIndex(isFinished), 1);
		let text = JSON.stringify(this.#jobs);
		for (; utf8Length(text) > maxListBytes; finishedCount--) {
			if (!finishedCount) throw new Error("job list too long");
			this.#jobs.splice(this.#jobs.findIndex(isFinished), 1);
			text = JSON.stringify(this.#jobs);
		}
		return text;
	}

	/** One generation's jobs, or why it cannot be trusted ("" when it was never written). */
	#read(generation: number): { jobs: Job[]; sequence: number } | string {
		const key = jobListKeys[generation];
		const header = this.#store.get(key);
		if (header === undefined) return "";
		if (!(header instanceof ArrayBuffer) || header.byteLength !== headerBytes) return "bad header";
		const head = new Uint8Array(header), view = new DataView(header);
		if (head[0] !== listFormat) return `format ${head[0]}`;
		const chunks = head[1], sequence = view.getUint32(4, true), length = view.getUint32(8, true);
		if (chunks < 1 || chunks > maxChunks || length > chunks * chunkBytes) return "bad header";
		const bytes = new Uint8Array(length);
		let at = 0;
		for (let i = 0; i < chunks; i++) {
			const chunk = this.#store.get(`${key}${i}`);
			if (!(chunk instanceof ArrayBuffer) || at + chunk.byteLength > length) return `chunk ${i} missing or torn`;
			bytes.set(new Uint8Array(chunk), at);
			at += chunk.byteLength;
		}
		if (at !== length || crc32(bytes, 0, length) !== view.getUint32(12, true)) return "crc mismatch";
		let jobs: unknown;
		try {
			jobs = JSON.parse(utf8Read(bytes, 0, length));
		}
		catch {
			return "bad json";
		}
		if (!Array.isArray(jobs) || !jobs.every(isJob)) return "not a job list";
		return { jobs: jobs as Job[], sequence };
	}
}

function isJob(value: unknown): value is Job {
	if (typeof value !== "object" || value === null) return false;
	const job = value as Job;
	return typeof job.id === "string" && typeof job.uri === "string" && typeof job.updateId === "number" &&
		typeof job.state === "string" && typeof job.lastActivity === "number" && typeof job.parameters === "object" && job.parameters !== null;
}
