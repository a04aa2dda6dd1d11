/*
	The AWS IoT Jobs MQTT API over Moddable's QoS-0 client, which acknowledges nothing and never reconnects.

	connect ─ready→ subscribe (jobs topics + whatever the stream added) → $next/get → listener.connected()
	closed → reconnect after exponential backoff with jitter; a message never answered is simply sent again:
	  (a secure connection refused maxTlsFailures times in a row for a "tls: " reason ends it: listener.failed)
	  status updates: the newest wanted status per job is re-published every retryMs until /accepted (or a
	                  /rejected that makes it moot), carrying expectedVersion; VersionMismatch refreshes the
	                  version from the rejection and sends again at once
	  $next/get:      asked on every connect and after every finished job
	Duplicate, late and out-of-order answers are matched by clientToken and ignored when stale.
*/

import type { Clock, Logger, MqttConnection, MqttConnector, MqttHandler } from "../platform/ports";
import { isTlsFailure } from "../lib/tls-failure";
import { nestedWithin } from "../lib/json";
import { utf8Read } from "../lib/utf8";

export interface JobsOptions {
	host: string;
	port: number;
	thing: string;
	keepAliveMs: number;
	reconnectBaseMs: number;
	reconnectMaxMs: number;
	retryMs: number;
	random: () => number;
	/** Distinguishes this power-on's client tokens from an earlier one's, whose answers may still arrive. */
	tokenPrefix: string;
	/** MQTT over TLS (mqtts://), offering `alpn` when not empty (AWS IoT Core on port 443). */
	tls?: { alpn: string };
}

export const defaultJobsOptions = { keepAliveMs: 60000, reconnectBaseMs: 1000, reconnectMaxMs: 60000, retryMs: 5000 };

export interface JobExecution {
	jobId: string;
	versionNumber: number;
	status: string;
	document: unknown;
	/** What the service holds from the device's last accepted update. */
	statusDetails: { [key: string]: unknown } | undefined;
}

export type JobStatus = "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "REJECTED";
export type StatusDetails = { [key: string]: string };

export interface JobsListener {
	/** Connected and subscribed: resend what was in flight. */
	connected(): void;
	/** The next pending execution changed (undefined: nothing to do). */
	next(execution: JobExecution | undefined): void;
	/** The service holds `status` for `jobId` (accepted now, or already terminal). */
	statusHeld(jobId: string, status: JobStatus): void;
	/** A message on a topic subscribed through subscribe(); returns whether it was taken. */
	message(topic: string, payload: ArrayBuffer): boolean;
	/** The broker refused the secure connection for good (untrusted, wrong name, client certificate refused). */
	failed(reason: string): void;
	/** The service refuses statuses for `jobId`, which it no longer holds as pending (cancelled, deleted, removed). */
	withdrawn(jobId: string): void;
}

interface PendingUpdate {
	status: JobStatus;
	details: StatusDetails;
	token: string;
}

/** A job document may nest 16 deep (job-document.ts); the execution and message wrap it in 3 more. */
const maxMessageDepth = 20;

/** A fresh RegExp per call, not a module constant (a preloaded RegExp: see agent/url.ts). */
function validJobId(id: string): boolean {
	return /^[a-zA-Z0-9_-]{1,64}$/.test(id);
}

/** $next/get requests sent before the client relies on notify-next alone (an answer can be lost: QoS 0). */
export const nextTries = 5;
/** Secure connections refused in a row, each for a "tls: " reason, before the client gives up. */
export const maxTlsFailures = 3;

const terminal: { [status: string]: boolean } = { SUCCEEDED: true, FAILED: true, REJECTED: true, TIMED_OUT: true, CANCELED: true, REMOVED: true };

export class JobsClient implements MqttHandler {
	#connector: MqttConnector;
	#clock: Clock;
	#log: Logger;
	#options: JobsOptions;
	#listener: JobsListener;
	#connection: MqttConnection | undefined;
	#ready = false;
	#failures = 0;
	#tlsFailures = 0;
	#topics: string[] = [];
	#versions: { [jobId: string]: number } = {};
	#pending: { [jobId: string]: PendingUpdate } = {};
	#retryTimer: unknown;
	#reconnectTimer: unknown;
	#tokens = 0;
	#stopped = false;
	/** $next/get requests left to send until one is answered. */
	#nextLeft = 0;
	readonly base: string;

	constructor(connector: MqttConnector, clock: Clock, log: Logger, options: JobsOptions, listener: JobsListener) {
		this.#connector = connector;
		this.#clock = clock;
		this.#log = log;
		this.#options = options;
		this.#listener = listener;
		this.base = `$aws/things/${options.thing}/jobs`;
		this.#topics.push(`${this.base}/notify-next`, `${this.base}/$next/get/accepted`, `${this.base}/+/update/accepted`,
			`${this.base}/+/update/rejected`);
	}

	get connected(): boolean {
		return this.#ready;
	}

	start(): void {
		this.#stopped = false;
		this.#connect();
	}

	stop(): void {
		this.#stopped = true;
		for (const timer of [this.#retryTimer, this.#reconnectTimer])
			if (timer !== undefined) this.#clock.clearTimeout(timer);
		this.#retryTimer = this.#reconnectTimer = undefined;
		const connection = this.#connection;
		this.#connection = undefined;
		this.#ready = false;
		connection?.close();
	}

	/** Adds a topic to the subscriptions kept across reconnects. */
	subscribe(topic: string): void {
		if (this.#topics.indexOf(topic) >= 0) return;
		this.#topics.push(topic);
		if (this.#ready) this.#connection!.subscribe(topic);
	}

	publish(topic: string, payload: string | ArrayBuffer): boolean {
		if (!this.#ready) return false;
		try {
			this.#connection!.publish(topic, payload);
			return true;
		}
		catch {
			return false;
		}
	}

	/** Asks for the next pending execution, again every retryMs until the service answers (nextTries at most). */
	requestNext(): void {
		this.#nextLeft = nextTries;
		this.#askNext();
		this.#armRetry();
	}

	/** Wants `status` for `jobId`; replaces any status still unconfirmed for it. */
	updateStatus(jobId: string, status: JobStatus, details: StatusDetails): void {
		this.#pending[jobId] = { status, details, token: this.#token() };
		this.#send(jobId);
		this.#armRetry();
	}

	ready(): void {
		this.#ready = true;
		this.#failures = this.#tlsFailures = 0;
		for (const topic of this.#topics) this.#connection!.subscribe(topic);
		this.#log("jobs connected");
		this.requestNext();
		for (const jobId in this.#pending) this.#send(jobId);
		this.#listener.connected();
	}

	closed(reason?: string): void {
		const wasReady = this.#ready;
		this.#ready = false;
		this.#connection = undefined;
		if (this.#stopped) return;
		if (reason && isTlsFailure(reason)) {
			if (++this.#tlsFailures >= maxTlsFailures) {
				this.#log(`jobs stopped: ${reason}, ${this.#tlsFailures} times`);
				this.stop();
				return this.#listener.failed(reason);
			}
		}
		else this.#tlsFailures = 0;
		const failures = ++this.#failures;
		const { reconnectBaseMs, reconnectMaxMs, random } = this.#options;
		const ceiling = Math.min(reconnectMaxMs, reconnectBaseMs * 2 ** Math.min(failures - 1, 16));
		const delay = Math.round(ceiling / 2 + (random() * ceiling) / 2);
		this.#log(`jobs ${wasReady ? "disconnected" : "connection failed"}${reason ? `: ${reason}` : ""}; reconnect in ${delay} ms`);
		this.#reconnectTimer = this.#clock.setTimeout(() => {
			this.#reconnectTimer = undefined;
			this.#connect();
		}, delay);
	}

	message(topic: string, payload: ArrayBuffer): void {
		if (!topic.startsWith(this.base)) {
			if (!this.#listener.message(topic, payload)) this.#log(`unexpected message on ${topic}`);
			return;
		}
		let body: any;
		try {
			const text = utf8Read(new Uint8Array(payload), 0, payload.byteLength);
			// A job document nested deeper than any valid one would overflow XS's recursive parser. It cannot be
			// rejected (its job id is inside it): it is dropped, and the job stays queued at the service.
			if (!nestedWithin(text, maxMessageDepth)) return this.#log(`message on ${topic} nested too deep: dropped`);
			body = JSON.parse(text);
		}
		catch {
			return this.#log(`unreadable message on ${topic}`);
		}
		if (!body || typeof body !== "object") return;
		const rest = topic.slice(this.base.length + 1);
		if (rest === "$next/get/accepted") {
			this.#nextLeft = 0;
			this.#disarmRetryWhenIdle();
		}
		if (rest === "notify-next" || rest === "$next/get/accepted")
			return this.#next(body.execution);
		const match = /^([^/]+)\/update\/(accepted|rejected)$/.exec(rest);
		if (match) return match[2] === "accepted" ? this.#accepted(match[1], body) : this.#rejected(match[1], body);
	}

	#connect(): void {
		if (this.#stopped || this.#connection) return;
		const { host, port, thing, keepAliveMs, tls } = this.#options;
		try {
			this.#connection = this.#connector.connect({ host, port, id: thing, keepAliveMs, tls }, this);
		}
		catch (error) {
			const message = (error as Error).message;
			this.#log(`jobs connect failed: ${message}`);
			this.#connection = undefined;
			this.closed(message);
		}
	}

	#next(execution: any): void {
		if (!execution || typeof execution !== "object" || typeof execution.jobId !== "string") return this.#listener.next(undefined);
		// AWS job ids are [a-zA-Z0-9_-]{1,64}. Any other goes into no topic (a "/" or "#" would address others) and
		// no record (which holds 64 bytes): it cannot even be rejected, so it is left queued at the service.
		if (!validJobId(execution.jobId)) return this.#log(`next execution ignored: bad job id`);
		const { jobId, versionNumber, status } = execution;
		if (typeof versionNumber === "number") this.#versions[jobId] = versionNumber;
		const details = execution.statusDetails && typeof execution.statusDetails === "object" ? execution.statusDetails : undefined;
		this.#listener.next({ jobId, versionNumber: versionNumber ?? 0, status: String(status ?? ""), document: execution.jobDocument, statusDetails: details });
	}

	#accepted(jobId: string, body: any): void {
		const pending = this.#pending[jobId];
		const version = body.executionState?.versionNumber;
		if (typeof version === "number") this.#versions[jobId] = version;
		if (!pending || body.clientToken !== pending.token) return;
		delete this.#pending[jobId];
		this.#disarmRetryWhenIdle();
		if (typeof version !== "number" && this.#versions[jobId] !== undefined) this.#versions[jobId]++;
		this.#listener.statusHeld(jobId, pending.status);
	}

	#rejected(jobId: string, body: any): void {
		const pending = this.#pending[jobId];
		if (!pending) return;
		// A progress status refused because the job ended without us (the cloud cancelled or removed it). A job
		// that ended stays ended, so even the refusal of an older status, sent before the newest, says so.
		if (!terminal[pending.status] && (body.code === "InvalidStateTransition" || body.code === "TerminalStateReached" || body.code === "ResourceNotFound")) {
			delete this.#pending[jobId];
			this.#disarmRetryWhenIdle();
			this.#log(`status ${pending.status} for ${jobId} rejected: ${body.code}`);
			return this.#listener.withdrawn(jobId);
		}
		if (body.clientToken !== pending.token) return;
		const state = body.executionState;
		if (typeof state?.versionNumber === "number") this.#versions[jobId] = state.versionNumber;
		this.#log(`status ${pending.status} for ${jobId} rejected: ${body.code}`);
		if (body.code === "VersionMismatch") {
			pending.token = this.#token();
			return this.#send(jobId);
		}
		delete this.#pending[jobId];
		this.#disarmRetryWhenIdle();
		// Already terminal (an earlier send was accepted before a cut or a lost answer): what we wanted is held.
		if (body.code === "InvalidStateTransition" && terminal[pending.status] && terminal[state?.status])
			this.#listener.statusHeld(jobId, state.status);
	}

	#send(jobId: string): void {
		const pending = this.#pending[jobId];
		if (!pending) return;
		const update: { [key: string]: unknown } = { status: pending.status, statusDetails: pending.details, clientToken: pending.token };
		const version = this.#versions[jobId];
		if (version !== undefined) update.expectedVersion = version;
		this.publish(`${this.base}/${jobId}/update`, JSON.stringify(update));
	}

	#askNext(): void {
		if (this.#nextLeft <= 0) return;
		if (this.publish(`${this.base}/$next/get`, JSON.stringify({ clientToken: this.#token() }))) this.#nextLeft--;
	}

	#armRetry(): void {
		if (this.#retryTimer !== undefined) return;
		this.#retryTimer = this.#clock.setTimeout(() => {
			this.#retryTimer = undefined;
			let any = this.#nextLeft > 0;
			this.#askNext();
			for (const jobId in this.#pending) {
				any = true;
				this.#send(jobId);
			}
			if (any) this.#armRetry();
		}, this.#options.retryMs);
	}

	/** Nothing left to confirm or ask: no reason to wake up again. */
	#disarmRetryWhenIdle(): void {
		if (this.#nextLeft > 0) return;
		for (const _ in this.#pending) return;
		if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
		this.#retryTimer = undefined;
	}

	#token(): string {
		this.#tokens = (this.#tokens + 1) % 1000000;
		return `${this.#options.tokenPrefix.slice(0, 48)}-${this.#tokens}`;
	}
}
