/*
	AWS IoT jobs driving the agent: the same record, slot writer, verification, switch and LwM2M model as an
	HTTP pull, with the job execution's status as the report.

	next execution ─ document invalid ──────────────→ REJECTED {result, reason}
	               ─ version not newer ──────────────→ REJECTED {result 8, reason}
	               ─ MQTT ─→ agent.requestStream ─┐
	               ─ HTTP ─→ agent.request ───────┴→ IN_PROGRESS {state, result, receive "got/total"} (bounded rate)
	after the switch, on the new image          → IN_PROGRESS {self_test "active"} → self-test (connected again)
	final result                                → SUCCEEDED {reason, updatedBy} or FAILED {result, reason},
	                                              re-sent until held, then $next/get
	a job that leaves the pending list before it is installed (notify-next or $next/get without it, or a
	progress status refused as no longer pending)  → transfer stopped, nothing switched, result 10, no report
	Each job ends in exactly one terminal status: the agent reports a final result until it is acknowledged,
	and the service refuses a second terminal status (which the jobs client reads as "already held").
	downloadTime (seconds, 3 decimals, in every report once known) is the time the device spent receiving the
	image, on its monotonic clock, summed over its power-ons: the service keeps the earlier power-ons' share in
	the statusDetails it holds (an update replaces them all), and the device reads it back from $next/get. A
	power-on cut between two progress reports loses what it received since the last one (progressIntervalMs).
	Reports made before the service has answered since boot wait for that answer (the newest per job; at most
	as long as the jobs client asks for it: nextTries × retryMs), so none wipes the held share, and the terminal
	event carries the whole time (the fleet tool's downloadTime metric is built from it).
*/

import type { Agent, AgentListener, SelfTest } from "../agent/agent";
import { State, type ResultCode, type StateCode, Result, resultNames } from "../agent/firmware-object";
import { parseJobDocument } from "../agent/job-document";
import type { DownloadRecord } from "../agent/record";
import type { DownloadListener } from "./transfer";
import type { BootControl, Clock, FlashSlot, Logger, MqttConnector } from "../platform/ports";
import { JobsClient, nextTries, type JobExecution, type JobStatus, type JobsListener, type JobsOptions, type StatusDetails } from "./aws-jobs";
import { StreamDownload, type StreamOptions } from "./aws-stream";
import { isNewerVersion } from "../agent/version";

export interface AwsOptions {
	jobs: JobsOptions;
	stream: StreamOptions;
	blockSize: number;
	allowDowngrade: boolean;
	progressIntervalMs: number;
}

export interface AwsPorts {
	connector: MqttConnector;
	clock: Clock;
	log: Logger;
	slot: FlashSlot;
	boot: BootControl;
}

const terminal: { [status: string]: boolean } = { SUCCEEDED: true, FAILED: true, REJECTED: true };

export class AwsUpdates implements JobsListener, AgentListener {
	#ports: AwsPorts;
	#options: AwsOptions;
	#jobs: JobsClient;
	#agent: Agent | undefined;
	#stream: StreamDownload | undefined;
	#lastProgress = -Infinity;
	/** Called once on the next connection (true), or when the service refuses the device for good (false). */
	#whenConnected: ((connected: boolean) => void)[] = [];
	/** The service refused the device for good ("tls: " reasons): nothing connects until a restart. */
	#refused = false;
	#confirming: { jobId: string; answer: (known: boolean) => void } | undefined;
	#download = new DownloadTime();
	/** Reports waiting for the service's first answer since boot (the newest per job), and the timer bounding the wait. */
	#waiting: { [jobId: string]: { status: JobStatus; details: StatusDetails } } = {};
	#waitTimer: unknown;
	/** Called when the broker refuses the device's secure connection for good (a "tls: " reason). */
	onFailure: ((reason: string) => void) | undefined;
	/** Called on the reboot warning command (topic xs-ota/<thing>/reboot-warning). */
	onRebootWarning: (() => void) | undefined;
	readonly warningTopic: string;

	constructor(ports: AwsPorts, options: AwsOptions) {
		this.#ports = ports;
		this.#options = options;
		this.#jobs = new JobsClient(ports.connector, ports.clock, ports.log, options.jobs, this);
		this.warningTopic = `xs-ota/${options.jobs.thing}/reboot-warning`;
		this.#jobs.subscribe(this.warningTopic);
	}

	/** The agent's job server: a job is still wanted when it is the service's next pending execution. */
	readonly jobServer = {
		confirm: (jobId: string, answer: (known: boolean) => void) => {
			this.#confirming = { jobId, answer };
			if (this.#jobs.connected) this.#jobs.requestNext();
		},
	};

	/**
		Maintenance's update check: asks the service for the next job, once connected. Connecting asks for it
		itself ($next/get), so a check made before the connection is up is done when it comes; `done(false)` when
		none comes within `waitMs` or the service refuses the device for good. Returns how to abort the wait.
	*/
	checkForJobs(waitMs: number, done: (checked: boolean) => void): () => void {
		if (this.#jobs.connected || this.#refused) {
			if (!this.#refused) this.#jobs.requestNext();
			done(!this.#refused);
			return () => {};
		}
		const clock = this.#ports.clock;
		const connected = (ok: boolean) => (clock.clearTimeout(timer), done(ok));
		const stopWaiting = () => (this.#whenConnected = this.#whenConnected.filter((waiter) => waiter !== connected));
		const timer = clock.setTimeout(() => (stopWaiting(), done(false)), waitMs);
		this.#whenConnected.push(connected);
		return () => (clock.clearTimeout(timer), stopWaiting());
	}

	/** Disconnects for good (shutdown). */
	stop(): void {
		if (this.#waitTimer !== undefined) this.#ports.clock.clearTimeout(this.#waitTimer);
		this.#waitTimer = undefined;
		this.#jobs.stop();
	}

	/** The agent's stream port. */
	readonly streams = {
		open: (record: DownloadRecord, listener: DownloadListener) => {
			const { slot, clock, log } = this.#ports;
			const stream = new StreamDownload({ slot, clock, log }, this.#options.stream, record, this.#options.jobs.thing, this.#jobs, listener);
			this.#jobs.subscribe(stream.dataTopic);
			this.#jobs.subscribe(stream.rejectedTopic);
			this.#stream = stream;
			return stream;
		},
	};

	/** The default self-test of an image updated by a job: the new firmware reaches the service again. */
	readonly selfTest: SelfTest = (done) => {
		if (this.#jobs.connected) return done(true);
		// Refused for good, it waits on: the bootloader rolls back an image that never confirms.
		this.#whenConnected.push((connected) => connected && done(true));
	};

	start(agent: Agent): void {
		this.#agent = agent;
		this.#jobs.start();
	}

	// AgentListener: the agent's model, reported as the job execution's status.

	status(state: StateCode, result: ResultCode): void {
		const record = this.#agent?.record;
		if (!record?.jobId || state === State.idle) return;
		const details: StatusDetails = { state: String(state), result: String(result) };
		if (state === State.updating) {
			const onNewImage = this.#ports.boot.runningSlot() === record.targetSlot;
			details.self_test = onNewImage ? "active" : "ready";
			if (onNewImage) details.updatedBy = this.#ports.boot.runningVersion();
		}
		this.#report(record.jobId, "IN_PROGRESS", details);
	}

	progress(received: number, total: number): void {
		const record = this.#agent?.record;
		const now = this.#ports.clock.ticks();
		if (!record?.jobId) return;
		this.#download.receiving(record.jobId, now, received >= total);
		if (received < total && now - this.#lastProgress < this.#options.progressIntervalMs) return;
		this.#lastProgress = now;
		this.#report(record.jobId, "IN_PROGRESS", { state: String(State.downloading), result: "0", receive: `${received}/${total}` });
	}

	result(_updateId: number, result: ResultCode, version: string, reason?: string): boolean {
		const record = this.#agent?.record;
		if (!record?.jobId) return true;
		if (result === Result.success)
			this.#report(record.jobId, "SUCCEEDED", { state: "0", result: "1", reason: `accepted v${version}`, updatedBy: version });
		else
			this.#report(record.jobId, "FAILED", { state: "0", result: String(result), reason: (reason || resultNames[result]).slice(0, 1024) });
		return false;
	}

	/** Sends a report with downloadTime added, once the service's share of it is known (see the leading comment). */
	#report(jobId: string, status: JobStatus, details: StatusDetails): void {
		if (this.#download.known()) {
			this.#jobs.updateStatus(jobId, status, this.#download.into(jobId, details, this.#ports.clock.ticks()));
			return;
		}
		this.#waiting[jobId] = { status, details };
		// As long as the jobs client keeps asking for the answer.
		this.#waitTimer ??= this.#ports.clock.setTimeout(() => this.#flush(), nextTries * this.#options.jobs.retryMs);
	}

	/** The service answered (or did not in time): the waiting reports go. */
	#flush(): void {
		if (this.#waitTimer !== undefined) this.#ports.clock.clearTimeout(this.#waitTimer);
		this.#waitTimer = undefined;
		this.#download.answered();
		const waiting = this.#waiting;
		this.#waiting = {};
		for (const jobId in waiting) this.#report(jobId, waiting[jobId].status, waiting[jobId].details);
	}

	// JobsListener: what the service says.

	connected(): void {
		this.#stream?.connected();
		this.#release(true);
	}

	next(execution: JobExecution | undefined): void {
		const confirming = this.#confirming;
		this.#confirming = undefined;
		confirming?.answer(execution?.jobId === confirming.jobId);
		const agent = this.#agent;
		if (!agent) return;
		const record = agent.record;
		if (execution?.jobId === record.jobId) this.#download.held(record.jobId, execution.statusDetails?.downloadTime);
		this.#flush();
		// IN_PROGRESS executions come first: a job of ours that is not next is no longer pending.
		if (record.jobId && execution?.jobId !== record.jobId && (record.state === State.downloading || record.state === State.downloaded))
			this.withdrawn(record.jobId);
		if (!execution) return;
		if (execution.jobId === record.jobId) {
			// The service still waits for a result the record already holds: it was never confirmed.
			if (record.state === State.idle && record.result !== Result.initial && !record.reportPending)
				this.result(record.updateId, record.result, record.version, agent.reasonOf(record.updateId));
			return;
		}
		if (record.state !== State.idle) return;
		const job = parseJobDocument(execution.document);
		if ("error" in job) return this.#reject(execution.jobId, job.result, job.error);
		// A version the document names is checked now; the image's own one after download (newerOnly).
		if (job.version && !this.#options.allowDowngrade && !isNewerVersion(job.version, this.#ports.boot.runningVersion()))
			return this.#reject(execution.jobId, Result.updateFailed, `version ${job.version} is not newer than ${this.#ports.boot.runningVersion()}`);
		this.#ports.log(`job ${execution.jobId}: ${job.form} ${job.version} over ${job.protocol}`);
		const newerOnly = !this.#options.allowDowngrade;
		if (job.protocol === "HTTP")
			return agent.request({ ...job.options, uri: job.url, automatic: true, jobId: execution.jobId, newerOnly });
		agent.requestStream({
			...job.options, jobId: execution.jobId, streamId: job.streamId, fileId: job.fileId, fileSize: job.fileSize, blockSize: this.#options.blockSize,
			version: job.version, md5: job.md5, signature: job.signature, newerOnly,
		});
	}

	statusHeld(jobId: string, status: JobStatus): void {
		const agent = this.#agent;
		if (!terminal[status] || !agent) return;
		if (agent.record.jobId === jobId) agent.acknowledgeResult(agent.record.updateId);
		this.#stream = undefined;
		this.#jobs.requestNext();
	}

	withdrawn(jobId: string): void {
		const agent = this.#agent;
		if (agent?.record.jobId !== jobId) return;
		this.#stream?.stop();
		this.#stream = undefined;
		agent.withdraw(jobId);
	}

	failed(reason: string): void {
		this.#ports.log(`aws iot unreachable: ${reason}`);
		this.#refused = true;
		this.#stream?.abandon(reason);
		this.#release(false);
		this.onFailure?.(reason);
	}

	#release(connected: boolean): void {
		const waiting = this.#whenConnected;
		this.#whenConnected = [];
		for (const waiter of waiting) waiter(connected);
	}

	message(topic: string, payload: ArrayBuffer): boolean {
		if (topic === this.warningTopic) {
			this.#ports.log("reboot warning command");
			this.onRebootWarning?.();
			return true;
		}
		return this.#stream?.message(topic, payload) ?? false;
	}

	#reject(jobId: string, result: ResultCode, reason: string): void {
		this.#ports.log(`job ${jobId} rejected: ${reason}`);
		this.#report(jobId, "REJECTED", { state: "0", result: String(result), reason: reason.slice(0, 1024) });
	}
}

/** The download time of the current job: earlier power-ons' share (as the service holds it) plus this one's. */
class DownloadTime {
	#jobId = "";
	/** Undefined while the service holds none for the job. */
	#heldMs: number | undefined;
	/** Ticks when this power-on began receiving, and its share once the image is complete. */
	#since: number | undefined;
	#ownMs: number | undefined;
	/** Whether the service has answered since boot (so the held share is known, or known to be absent). */
	#answered = false;

	#select(jobId: string): void {
		if (jobId === this.#jobId) return;
		this.#jobId = jobId;
		this.#heldMs = this.#since = this.#ownMs = undefined;
	}

	/** The service's first answer since boot holds `text` (seconds) for the job: the earlier power-ons' share. */
	held(jobId: string, text: unknown): void {
		if (this.#answered) return;
		this.#select(jobId);
		if (typeof text === "string" && /^\d{1,9}(\.\d{1,3})?$/.test(text)) this.#heldMs = Number(text) * 1000;
	}

	answered(): void {
		this.#answered = true;
	}

	receiving(jobId: string, now: number, complete: boolean): void {
		this.#select(jobId);
		if (this.#ownMs !== undefined) return;
		this.#since ??= now;
		if (complete) this.#ownMs = now - this.#since;
	}

	/** Whether reports can go: the service's share is known (or it did not answer in time). */
	known(): boolean {
		return this.#answered;
	}

	/** `details` with downloadTime added when there is one (a running total while receiving). */
	into(jobId: string, details: StatusDetails, now: number): StatusDetails {
		if (jobId !== this.#jobId) return details;
		const own = this.#ownMs ?? (this.#since === undefined ? undefined : now - this.#since);
		if (own !== undefined || this.#heldMs !== undefined) details.downloadTime = (((this.#heldMs ?? 0) + (own ?? 0)) / 1000).toFixed(3);
		return details;
	}
}
