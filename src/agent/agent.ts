/*
	The agent: boot restore → reconcile → download → verify → switch → confirm → report.

	On start it loads the record and picks up where the last power-on stopped:
	  idle                         nothing to do (State and Update Result are reported as stored)
	  downloading                  apply the recovery policy: save point resumes from the checkpoint,
	                               restart fetches from 0, abort cleans the slot and reports 8, none forgets
	  downloaded                   wait for Update, or run it at once when the request asked for automatic update
	  updating, new slot running   first boot of the new image: self-test, mark valid, report 1
	                               (a failed self-test records 8 and reboots without confirming: the bootloader rolls back)
	  updating, old slot running   the bootloader rolled back (or the switch never happened): re-verify the image
	                               still in the other slot and switch again, at most maxSwitches times, then report 8

	Every transition is persisted in the record before the action it announces, so a cut at any point finds
	a record that says what to do next. The job list (job-list.ts) follows each transition.

	Restoring waits for the server: a job found downloading or downloaded at boot is first confirmed (its AWS
	job is still the service's next execution; its package URI still answers a HEAD), and dropped when the
	server no longer knows it, so a stale job never locks the agent. With reboot persistence off, such a job
	is dropped at boot without asking.

	A request comes as a Package URI (request: http(s):// through transport/http-pull.ts, coap:// through the coap port), a
	pushed Package (beginPush: the push port's transfer takes the server's blocks), or an AWS job's stream
	(requestStream). A push cannot resume: one found downloading at boot ends with 4.

	An automatic install asks the install gate (maintenance.ts) when it may run; until then the agent holds
	the verified image in State 2 with Update Result 11 (deferred).

	shutdown() is the orderly end: no new requests, no more transitions, the transfer stopped with all it
	wrote saved. A reboot warning (polled while a transfer runs) does the same at once, then clears itself.
*/

import type { BootControl, Clock, Digest, FlashSlot, HttpClient, KeyValueStore, Logger, RebootWarning, SignatureVerifier, Url, RunningImage } from "../platform/ports";
import { ImageState } from "../platform/ports";
import { type DownloadListener, type DownloadOptions, type DownloadOutcome, type Transfer, defaultDownloadOptions } from "../transport/transfer";
import { HttpPull } from "../transport/http-pull";
import { FirmwareObject, Result, type ResultCode, State, type StateCode, isFailure, resultNames, stateNames } from "./firmware-object";
import { checkImage, slotDigest } from "./image";
import type { ImageTrust } from "./image-trust";
import { ErasePlan } from "./erase-plan";
import { type Job, JobList, type SeverityName, jobFor } from "./job-list";
import { confirmPackage, headStatus } from "./job-server";
import { type DownloadRecord, Policy, type PolicyCode, RecordStore, Source, emptyRecord, maxUriBytes, policyNames, policyOf } from "./record";
import { isCoap, parseUrl, queryParameter, schemePort, uriScheme } from "./url";
import { utf8Length } from "../lib/utf8";
import { isNewerVersion } from "./version";

export interface AgentPorts {
	slot: FlashSlot;
	store: KeyValueStore;
	boot: BootControl;
	clock: Clock;
	http: HttpClient;
	digest: Digest;
	log: Logger;
	/** The running slot, read as a patch's base; without it every package is an image. */
	running?: RunningImage;
	/** MD5, for AWS "fota" job documents. */
	md5?: Digest;
	/** Code-signing check, for AWS "afr_ota" job documents. */
	signature?: SignatureVerifier;
	/** Opens an AWS IoT MQTT stream transfer for a record whose source is a stream. */
	streams?: { open(record: DownloadRecord, listener: DownloadListener): Transfer };
	/** Opens a CoAP pull (coap:// or coaps:// Package URI); without it such a URI fails with 9. */
	coap?: { open(record: DownloadRecord, url: Url, listener: DownloadListener): Transfer };
	/** Opens the transfer of a package pushed to the Package resource (/5/0/0); without it a push is refused. */
	push?: { open(record: DownloadRecord, listener: DownloadListener): PushTransfer };
	/** The jobs service, asked at boot whether an AWS job still matters. */
	jobServer?: JobServer;
	/** When an automatic install may run (maintenance windows, opt-out); without one, at once. */
	gate?: InstallGate;
	/** The reboot warning watched while a transfer runs. */
	warning?: RebootWarning;
	/** Signatures and anti-rollback: which verified image may boot; without it, any. */
	trust?: ImageTrust;
}

/** A pushed package's transfer: the server's blocks are written as they come. */
export interface PushTransfer extends Transfer {
	/** Writes the next block; false once the push is over (it failed, or it was stopped). */
	write(bytes: Uint8Array): boolean;
	/** The last block was written. */
	finish(): void;
	/** The pushed representation was malformed (`reason`): the push ends with 6. */
	refuse(reason: string): void;
}

export interface JobServer {
	/** Answers once connected: whether job `jobId` is still pending on the service. */
	confirm(jobId: string, answer: (known: boolean) => void): void;
}

export interface InstallGate {
	/** Whether the user's opt-out refuses a (non-critical) update before it is downloaded. */
	refuses(critical: boolean): boolean;
	/** When an update downloaded at `downloadedAt` may install (ms since 1970); Infinity holds it. */
	installAt(critical: boolean, downloadedAt: number, maxDeferSeconds: number): number;
}

/** An app's own check of a new image on its first boot; call done(true) to confirm it. */
export type SelfTest = (done: (passed: boolean, reason?: string) => void) => void;

export interface AgentOptions {
	chipId: number;
	policy: PolicyCode;
	/** Switches to a downloaded image tried before giving up with 8 (each rollback by a cut costs one). */
	maxSwitches: number;
	/** Deadline for the self-test of a new image. */
	selfTestMs: number;
	selfTest: SelfTest | undefined;
	download: DownloadOptions;
	/** Keep the job list and resume jobs across reboots (on by default). */
	rebootPersistence: boolean;
	/** How often the reboot warning is polled while a transfer runs. */
	warningPollMs: number;
	/** First delay before asking an unreachable package server again whether a restored job still matters. */
	confirmRetryMs: number;
	/** Questions to an unreachable package server before the restored job resumes without its answer. */
	confirmTries: number;
	/** Maximum Defer Period (LwM2M resource 13) of requests that name none, in seconds. */
	maxDeferSeconds: number;
}

export const defaultAgentOptions: AgentOptions = {
	chipId: 0,
	policy: Policy.savePoint,
	maxSwitches: 5,
	selfTestMs: 30000,
	selfTest: undefined,
	download: defaultDownloadOptions,
	rebootPersistence: true,
	warningPollMs: 1000,
	confirmRetryMs: 1000,
	confirmTries: 3,
	maxDeferSeconds: 7 * 86400,
};

/** Parameters every request may carry beside its package. */
export interface JobOptions {
	policy?: PolicyCode;
	/** Refuse the image unless its version is newer than the running one. */
	newerOnly?: boolean;
	/** LwM2M Severity (resource 11): a critical update installs at once, whatever the window or opt-out. */
	severity?: SeverityName;
	/** LwM2M Maximum Defer Period (resource 13) in seconds; 0 installs without waiting for a window. */
	maxDeferSeconds?: number;
}

export interface UpdateRequest extends JobOptions {
	/** The package; its query may name the recovery policy: ?recovery=restart. */
	uri: string;
	/** Expected SHA-256 of the package, 32 bytes. */
	sha256?: Uint8Array;
	/** Run Update as soon as the package is downloaded and verified (LwM2M resource 14). */
	automatic?: boolean;
	/** The AWS IoT job this pull belongs to (a job document with update_data_url). */
	jobId?: string;
}

/** An AWS IoT job whose package comes over an MQTT file stream. */
export interface StreamRequest extends JobOptions {
	jobId: string;
	streamId: string;
	fileId: number;
	fileSize: number;
	blockSize: number;
	version: string;
	md5?: Uint8Array;
	signature?: Uint8Array;
}

export interface AgentListener {
	status(state: StateCode, result: ResultCode): void;
	progress(received: number, total: number): void;
	/**
	 * Reports the final result of update `updateId` to the server; returns true once it is acknowledged.
	 * Unacknowledged reports are repeated at every boot until one is; a cut between the acknowledgement and
	 * the record's save repeats it once more, so the server de-duplicates by update id.
	 */
	result(updateId: number, result: ResultCode, version: string, reason?: string): boolean;
	/** The agent shut down (orderly or warned): disconnect from services now. */
	shutDown?(): void;
}

/** The verify's read buffer: allocated for each verify (a few a year), not held for the agent's life. */
const scratchBytes = 4096;

export class Agent {
	#ports: AgentPorts;
	#options: AgentOptions;
	#listener: AgentListener;
	#records: RecordStore;
	#record: DownloadRecord = emptyRecord();
	#firmware: FirmwareObject;
	#download: Transfer | undefined;
	#automatic = false;
	#jobs: JobList;
	#closed = false;
	#installTimer: unknown;
	#warningTimer: unknown;
	#stopConfirming: (() => void) | undefined;
	#packageName = "";

	constructor(ports: AgentPorts, options: AgentOptions, listener: AgentListener) {
		this.#ports = ports;
		this.#options = options;
		this.#listener = listener;
		this.#records = new RecordStore(ports.store, ports.log);
		this.#jobs = new JobList(ports.store, ports.log, options.rebootPersistence);
		this.#firmware = new FirmwareObject({ state: State.idle, result: Result.initial }, (status) => {
			ports.log(`state ${stateNames[status.state]}, result ${resultNames[status.result]}`);
			listener.status(status.state, status.result);
		});
	}

	get state(): StateCode {
		return this.#firmware.state;
	}

	get result(): ResultCode {
		return this.#firmware.result;
	}

	/** Why update `updateId` failed, as the job list keeps it (undefined when it did not fail or is gone). */
	reasonOf(updateId: number): string | undefined {
		return this.#jobs.find(updateId)?.reason;
	}

	get packageUri(): string {
		return this.#record.uri;
	}

	/** Project name of the image verified in this power-on (LwM2M PkgName), "" before. */
	get packageName(): string {
		return this.#firmware.state === State.idle && this.#firmware.result !== Result.success ? "" : this.#packageName;
	}

	/** Every job the agent holds: the current one and the most recent finished ones. */
	get jobs(): readonly Readonly<Job>[] {
		return this.#jobs.jobs;
	}

	/** A verified image waits to be installed: the next install (window, consent or Update) reboots. */
	get isRebootPending(): boolean {
		return this.#firmware.state === State.downloaded;
	}

	/** Severity of the job whose image waits to be installed ("major" when none does). */
	get waitingSeverity(): SeverityName {
		return this.isRebootPending ? this.#currentJob()?.parameters.severity ?? "major" : "major";
	}

	start(): void {
		const record = this.#records.load();
		if (record) {
			this.#record = record;
			this.#automatic = record.automatic;
			this.#firmware.state = record.state;
			this.#firmware.result = record.result;
		}
		this.#restoreJobs();
		this.#listener.status(this.#firmware.state, this.#firmware.result);
		this.#reportResult();
		const warning = this.#ports.warning;
		if (warning?.raised()) {
			this.#ports.log("reboot warning from before this boot cleared");
			warning.clear();
		}
		switch (this.#record.state) {
			case State.downloading:
			case State.downloaded:
				if (!this.#options.rebootPersistence) return this.#forget("reboot persistence is off");
				return this.#confirmJob();
			case State.updating: return this.#afterSwitch();
		}
	}

	/**
		Orderly shutdown: refuses new requests, suspends state transitions, stops the transfer with everything
		it wrote saved, persists the record and the job list. The app then restarts or powers off.
	*/
	shutdown(): void {
		if (this.#closed) return;
		this.#closed = true;
		const { clock, log } = this.#ports;
		clock.clearTimeout(this.#installTimer);
		clock.clearTimeout(this.#warningTimer);
		this.#stopConfirming?.();
		const download = this.#download;
		this.#download = undefined;
		download?.suspend();
		const job = this.#currentJob();
		if (job) job.lastActivity = clock.now();
		this.#jobs.save();
		log(`shut down in ${stateNames[this.#firmware.state]} at ${this.#record.committed} of ${this.#record.totalSize}`);
		this.#listener.shutDown?.();
	}

	/** Writes Package URI: starts (or resumes) a pull download. An empty URI resets the object. */
	request(request: UpdateRequest): void {
		this.#checkOpen();
		if (this.#firmware.state === State.updating) throw new Error("update in progress");
		this.#stopDownload();
		const { uri } = request;
		if (!uri) return this.#reset();
		const previous = this.#record;
		const resumable = previous.uri === uri && previous.committed > 0 && previous.etag !== "" &&
			(previous.state === State.downloading || previous.result === Result.connectionLost);
		if (this.#firmware.state !== State.idle) this.#enter(State.idle, Result.initial);
		const tooLong = utf8Length(uri) > maxUriBytes;
		const record = emptyRecord();
		record.uri = tooLong ? "" : uri;
		record.policy = request.policy ?? policyOf(queryParameter(uri, "recovery") ?? "") ?? this.#options.policy;
		record.sha256 = request.sha256;
		record.automatic = this.#automatic = request.automatic ?? false;
		record.updateId = (previous.updateId + 1) >>> 0;
		record.jobId = request.jobId ?? "";
		record.newerOnly = request.newerOnly ?? false;
		if (resumable) {
			record.committed = previous.committed;
			record.etag = previous.etag;
			record.totalSize = previous.totalSize;
		}
		this.#record = record;
		this.#beginJob(request);
		if (this.#refused(request)) return;
		if (tooLong) return this.#endDownload(Result.invalidUri, "uri too long");
		// A scheme the agent cannot fetch is 9 even when the rest does not parse (file:///etc/passwd has no host).
		const scheme = uriScheme(uri);
		if (scheme !== undefined && (schemePort(scheme) === undefined || (isCoap(scheme) && !this.#ports.coap)))
			return this.#endDownload(Result.unsupportedProtocol, `scheme ${scheme}`);
		const url = parseUrl(uri);
		if (typeof url === "string") return this.#endDownload(Result.invalidUri, url);
		this.#startDownload();
	}

	/**
		Writes Package (LwM2M resource 0): starts a push whose blocks the returned transfer writes to the slot,
		or undefined when the push is refused at once (its result is then in State and Update Result).
		`size` is the package's announced size (Block1's Size1), 0 when unknown.
	*/
	beginPush(options: JobOptions, size: number): PushTransfer | undefined {
		this.#checkOpen();
		if (this.#firmware.state === State.updating) throw new Error("update in progress");
		const push = this.#ports.push;
		if (!push) throw new Error("no push transport");
		this.#stopDownload();
		const previous = this.#record;
		if (this.#firmware.state !== State.idle) this.#enter(State.idle, Result.initial);
		const record = emptyRecord();
		record.source = Source.push;
		record.policy = Policy.restart;
		record.updateId = (previous.updateId + 1) >>> 0;
		record.totalSize = size;
		this.#record = record;
		this.#automatic = false;
		this.#beginJob(options);
		if (this.#refused(options)) return undefined;
		if (size > this.#ports.slot.byteLength) {
			this.#endDownload(Result.notEnoughFlash, `${size} bytes do not fit the slot`);
			return undefined;
		}
		const transfer = push.open(record, this.#transferListener());
		this.#download = transfer;
		transfer.start();
		this.#watchWarning();
		return transfer;
	}

	/** Executes Update through the install gate: now, or held as deferred (11) until its window or consent. */
	install(): void {
		this.#checkOpen();
		if (this.#firmware.state !== State.downloaded) throw new Error("nothing downloaded");
		this.#automatic = this.#record.automatic = true;
		this.#installWhenAllowed();
	}

	/** Takes an AWS IoT job (already validated): downloads its stream, then updates automatically. */
	requestStream(request: StreamRequest): void {
		this.#checkOpen();
		if (this.#firmware.state === State.updating) throw new Error("update in progress");
		const previous = this.#record;
		if (previous.jobId === request.jobId && previous.state !== State.idle) return;
		this.#stopDownload();
		if (!this.#ports.streams) throw new Error("no stream transport");
		if (this.#firmware.state !== State.idle) this.#enter(State.idle, Result.initial);
		const record = emptyRecord();
		record.source = Source.awsStream;
		record.policy = request.policy ?? this.#options.policy;
		record.automatic = this.#automatic = true;
		record.updateId = (previous.updateId + 1) >>> 0;
		record.jobId = request.jobId;
		record.streamId = request.streamId;
		record.fileId = request.fileId;
		record.blockSize = request.blockSize;
		record.totalSize = request.fileSize;
		record.version = request.version;
		record.md5 = request.md5;
		record.signature = request.signature;
		record.newerOnly = request.newerOnly ?? false;
		this.#record = record;
		this.#beginJob(request);
		if (this.#refused(request)) return;
		if (request.fileSize > this.#ports.slot.byteLength)
			return this.#endDownload(Result.notEnoughFlash, `${request.fileSize} bytes do not fit the slot`);
		this.#startDownload();
	}

	/** The server holds the final result of update `updateId`: stop reporting it. */
	acknowledgeResult(updateId: number): void {
		const record = this.#record;
		if (!record.reportPending || record.updateId !== updateId) return;
		record.reportPending = false;
		this.#records.save(record);
	}

	/** The persisted record, read-only: which job or URI the agent holds, and where it stands. */
	get record(): Readonly<DownloadRecord> {
		return this.#record;
	}

	/**
		Executes Update: switches the boot slot to the verified image and reboots. An AWS job is first confirmed
		as still pending: a cancellation that came while it downloaded (and whose notice was lost) must never
		end with the board running an image the cloud calls CANCELED.
	*/
	update(): void {
		this.#checkOpen();
		if (this.#firmware.state !== State.downloaded) throw new Error("nothing downloaded");
		this.#ports.clock.clearTimeout(this.#installTimer);
		const record = this.#record, jobServer = this.#ports.jobServer;
		if (!record.jobId || !jobServer) return this.#install();
		jobServer.confirm(record.jobId, (known) => {
			if (this.#closed || this.#record !== record || record.state !== State.downloaded) return;
			if (known) this.#install();
			else this.withdraw(record.jobId);
		});
	}

	#install(): void {
		const { boot, log } = this.#ports;
		const record = this.#record;
		// From a factory app (slot -1) the first OTA slot is the next one, as esp_ota_get_next_update_partition says.
		const running = boot.runningSlot();
		record.targetSlot = running < 0 ? 0 : 1 - running;
		record.switches = 1;
		this.#enter(State.updating, Result.initial);
		this.#switch();
		log(`switch to slot ${record.targetSlot} failed`);
		this.#enter(State.downloaded, Result.updateFailed);
	}

	/** Cancels a download or a downloaded package (LwM2M Cancel); refused while updating. */
	cancel(): void {
		this.#checkOpen();
		const state = this.#firmware.state;
		if (state === State.updating) throw new Error("update in progress");
		if (state === State.idle) return;
		this.#stopDownload();
		this.#ports.clock.clearTimeout(this.#installTimer);
		this.#record.committed = 0;
		this.#enter(State.idle, Result.cancelled);
	}

	/**
		The jobs service withdrew job `jobId` (cancelled, deleted, removed) before it was installed: the transfer
		stops, nothing is switched, and it ends cancelled (10) without a report, as no execution is left to take one.
	*/
	withdraw(jobId: string): void {
		const record = this.#record;
		if (record.jobId !== jobId || (record.state !== State.downloading && record.state !== State.downloaded)) return;
		this.#ports.log(`job ${jobId} withdrawn by the jobs service: cancelled`);
		this.#stopConfirming?.();
		this.#stopConfirming = undefined;
		this.#stopDownload();
		this.#ports.clock.clearTimeout(this.#installTimer);
		record.committed = 0;
		record.etag = "";
		record.blocks = undefined;
		this.#enter(State.idle, Result.cancelled, "withdrawn by the jobs service", false);
	}

	/** Stops the transfer, keeping what is committed: the next start resumes. */
	stop(): void {
		this.#stopDownload();
	}

	#recover(): void {
		const record = this.#record;
		this.#ports.log(`recovering download (${policyNames[record.policy]}) at ${record.committed} of ${record.totalSize}`);
		switch (record.policy) {
			case Policy.savePoint:
				return this.#startDownload();
			case Policy.restart:
				record.committed = 0;
				record.etag = "";
				record.blocks = undefined;
				return this.#startDownload();
			case Policy.abort:
				this.#eraseAbandoned(record);
				record.committed = 0;
				return this.#endDownload(Result.updateFailed, "aborted by recovery policy");
			case Policy.none:
				return this.#forget("recovery policy none");
		}
	}

	/**
		Erases what an abandoned download may have written: the image's whole extent, since stream blocks land
		anywhere in it and bytes past the last checkpoint are not recorded. Blocks where worth it (erase-plan.ts).
		A cut during the erase leaves the record as it was, so the next boot erases again.
	*/
	#eraseAbandoned(record: DownloadRecord): void {
		const slot = this.#ports.slot;
		const end = Math.min(slot.byteLength, Math.max(record.totalSize, record.committed, slot.sectorSize));
		const plan = new ErasePlan(slot, () => false);
		plan.setImageSize(end);
		plan.prepare(0, end);
	}

	#checkOpen(): void {
		if (this.#closed) throw new Error("shutting down");
	}

	#currentJob(): Job | undefined {
		return this.#jobs.find(this.#record.updateId);
	}

	/** Enters Downloading for the request the record now holds, with its job in the list. */
	#beginJob(options: JobOptions): void {
		this.#enter(State.downloading, Result.initial);
		this.#addJob(options);
	}

	/** Lists the record's job with the request's severity and defer period (the defaults when it gave none). */
	#addJob(options: JobOptions): void {
		this.#jobs.add(jobFor(this.#record, {
			severity: options.severity ?? "major",
			maxDeferSeconds: options.maxDeferSeconds ?? this.#options.maxDeferSeconds,
		}, this.#ports.clock.now()));
	}

	/** The user's opt-out refuses the update: it ends cancelled (10) before a byte is fetched. */
	#refused(options: JobOptions): boolean {
		if (!this.#ports.gate?.refuses(options.severity === "critical")) return false;
		this.#endDownload(Result.cancelled, "refused by the opt-out setting");
		return true;
	}

	/** The job list as stored, reconciled with the record: the record wins for the job it holds. */
	#restoreJobs(): void {
		this.#jobs.load();
		const record = this.#record;
		if (record.state === State.idle && !record.reportPending) return;
		if (this.#currentJob()) return this.#jobs.follow(record, this.#ports.clock.now());
		// A record saved just before a cut, whose job never reached the list: its request's options are lost.
		this.#addJob({});
	}

	/** Forgets the current job: its record goes back to Idle (0) and the job leaves the list. */
	#forget(reason: string): void {
		this.#stopDownload();
		this.#jobs.drop(this.#record.updateId, reason);
		this.#record.committed = 0;
		this.#record.etag = "";
		this.#record.blocks = undefined;
		this.#enter(State.idle, Result.initial);
	}

	/** Asks the server whether the restored job still matters, then carries on with it or drops it. */
	#confirmJob(): void {
		const record = this.#record, { updateId, state } = record;
		const answer = (known: boolean) => {
			this.#stopConfirming = undefined;
			if (this.#closed || this.#record !== record || record.state !== state) return;
			if (!known) return record.jobId ? this.withdraw(record.jobId) : this.#forget("the server no longer knows it");
			this.#ports.log(`job ${this.#currentJob()?.id ?? updateId} still wanted by the server: restored`);
			if (state === State.downloading) this.#recover();
			else this.#installWhenAllowed();
		};
		if (record.jobId) {
			if (!this.#ports.jobServer) return answer(true);
			return this.#ports.jobServer.confirm(record.jobId, answer);
		}
		const url = parseUrl(record.uri);
		// Only an HTTP server answers a HEAD; a CoAP pull finds out for itself (4.04 ends it with 7).
		if (typeof url === "string" || isCoap(url.scheme)) return answer(true);
		this.#stopConfirming = confirmPackage(this.#ports, url, this.#options.confirmRetryMs, this.#options.confirmTries, answer);
	}

	/** Installs an automatic update now, or holds it (11, deferred) until the gate's time comes. */
	#installWhenAllowed(): void {
		if (!this.#automatic || this.#closed) return;
		const clock = this.#ports.clock, now = clock.now(), at = this.#installAt();
		if (at <= now) return this.update();
		this.#enter(State.downloaded, Result.deferred);
		this.#ports.log(at === Infinity ? "install held until the user consents" : `install deferred to the maintenance window, at the latest ${Math.round((at - now) / 1000)} s from now`);
		clock.clearTimeout(this.#installTimer);
		// Long waits are re-checked daily: the settings (and so the answer) may change meanwhile.
		if (at !== Infinity) this.#installTimer = clock.setTimeout(() => this.#installWhenAllowed(), Math.min(at - now, 86400000));
	}

	/** For maintenance's install task: whether a waiting update may install now ("held": the opt-out or its window says wait). */
	installDecision(): "none" | "held" | "now" {
		if (this.#firmware.state !== State.downloaded || this.#closed) return "none";
		return this.#installAt() > this.#ports.clock.now() ? "held" : "now";
	}

	/** When the gate lets the waiting update install on its own (now without a gate). */
	#installAt(): number {
		const job = this.#currentJob(), now = this.#ports.clock.now();
		const parameters = job?.parameters;
		return this.#ports.gate?.installAt(parameters?.severity === "critical", job?.downloadTime || now,
			parameters?.maxDeferSeconds ?? this.#options.maxDeferSeconds) ?? now;
	}

	#watchWarning(): void {
		const warning = this.#ports.warning, clock = this.#ports.clock;
		if (!warning) return;
		clock.clearTimeout(this.#warningTimer);
		this.#warningTimer = clock.setTimeout(() => {
			if (!this.#download || this.#closed) return;
			if (!warning.raised()) return this.#watchWarning();
			this.#ports.log("reboot warning: persisting and disconnecting");
			this.shutdown();
			warning.clear();
		}, this.#options.warningPollMs);
	}

	#transferListener(): DownloadListener {
		return {
			save: () => this.#records.save(this.#record),
			progress: (received, total) => this.#listener.progress(received, total),
			done: (outcome) => this.#downloaded(outcome),
		};
	}

	#startDownload(): void {
		const listener = this.#transferListener(), source = this.#record.source;
		if (source === Source.push) return this.#endDownload(Result.connectionLost, "a pushed package cannot resume: push it again");
		if (source === Source.awsStream) {
			const streams = this.#ports.streams;
			if (!streams) return this.#endDownload(Result.unsupportedProtocol, "no stream transport");
			this.#download = streams.open(this.#record, listener);
		}
		else {
			const url = parseUrl(this.#record.uri);
			if (typeof url === "string") return this.#endDownload(Result.invalidUri, url);
			const { http, slot, clock, log, coap } = this.#ports;
			if (isCoap(url.scheme)) {
				if (!coap) return this.#endDownload(Result.unsupportedProtocol, "no coap transport");
				this.#download = coap.open(this.#record, url, listener);
			}
			else this.#download = new HttpPull({ http, slot, clock, log, patch: this.#patchPorts() }, this.#options.download, this.#record, url, listener);
		}
		this.#download.start();
		this.#watchWarning();
	}

	/** What a pulled patch is applied from: the running slot, when the platform reads it. */
	#patchPorts() {
		const { running, slot, digest } = this.#ports;
		return running && { running, slot, digest, chipId: this.#options.chipId };
	}

	#stopDownload(): void {
		this.#download?.stop();
		this.#download = undefined;
		this.#ports.clock.clearTimeout(this.#warningTimer);
	}

	#downloaded(outcome: DownloadOutcome): void {
		// The transfer is over either way: nothing more to watch (a deferred install may wait for days).
		this.#download = undefined;
		this.#ports.clock.clearTimeout(this.#warningTimer);
		if (!outcome.ok) {
			if (outcome.result !== Result.connectionLost) this.#record.committed = 0;
			return this.#endDownload(outcome.result, outcome.reason);
		}
		const record = this.#record;
		const { slot, digest, log } = this.#ports;
		const scratch = new Uint8Array(scratchBytes);
		const { trust } = this.#ports;
		const check = checkImage(slot, digest, this.#options.chipId, scratch, trust?.signedData);
		if (!check.ok) return this.#rejectImage(check.result, check.reason);
		if (check.imageLength > record.totalSize) return this.#rejectImage(Result.integrityFailure, "image longer than the download");
		const refusal = trust?.refuses(slot, check, record.totalSize, scratch);
		if (refusal) return this.#rejectImage(refusal.result, refusal.reason);
		// An 8-bit checksum passes a spliced or corrupt image about once in 256: something stronger must vouch.
		if (!check.hashed && !record.sha256 && !record.md5 && !record.signature)
			return this.#rejectImage(Result.unsupportedPackage, "image has no appended sha-256 and the request no digest");
		let failure: string | undefined;
		try {
			failure = this.#checkPackage(scratch);
		}
		catch (error) {
			failure = `package check failed: ${(error as Error).message}`;
		}
		if (failure) return this.#rejectImage(Result.integrityFailure, failure);
		const running = this.#ports.boot.runningVersion();
		if (record.newerOnly && !isNewerVersion(check.version, running))
			return this.#rejectImage(Result.updateFailed, `version ${check.version} is not newer than ${running}`);
		record.imageLength = check.imageLength;
		record.version = check.version;
		this.#packageName = check.projectName;
		log(`image ${check.version} verified, ${check.imageLength} bytes`);
		this.#enter(State.downloaded, Result.initial);
		this.#installWhenAllowed();
	}

	/** The package-level checks the request asked for, over the bytes on flash; a reason when one fails. */
	#checkPackage(scratch: Uint8Array): string | undefined {
		const record = this.#record;
		const { slot, digest } = this.#ports;
		if (record.sha256 || record.signature) {
			const sha256 = new Uint8Array(32);
			slotDigest(slot, record.totalSize, digest, scratch, sha256);
			if (record.sha256 && !sameBytes(sha256, record.sha256)) return "sha-256 mismatch";
			if (record.signature) {
				if (!this.#ports.signature) return "no signature verifier";
				if (!this.#ports.signature.verify(sha256, record.signature)) return "signature mismatch";
			}
		}
		if (record.md5) {
			if (!this.#ports.md5) return "no md5 digest";
			const md5 = new Uint8Array(16);
			slotDigest(slot, record.totalSize, this.#ports.md5, scratch, md5);
			if (!sameBytes(md5, record.md5)) return "md5 mismatch";
		}
		return undefined;
	}

	#rejectImage(result: ResultCode, reason: string): void {
		// Never resume onto bytes that failed verification.
		this.#record.committed = 0;
		this.#record.etag = "";
		this.#record.blocks = undefined;
		this.#endDownload(result, reason);
	}

	#endDownload(result: ResultCode, reason: string): void {
		this.#stopDownload();
		this.#ports.log(`download failed: ${reason}`);
		this.#enter(State.idle, result, reason);
	}

	#afterSwitch(): void {
		const record = this.#record;
		const { boot, log } = this.#ports;
		if (boot.runningSlot() === record.targetSlot) {
			if (boot.runningState() !== ImageState.pendingVerify) return this.#confirmed();
			return this.#selfTest();
		}
		log(`running the old image: switch ${record.switches} of ${this.#options.maxSwitches} did not stick`);
		if (record.switches >= this.#options.maxSwitches)
			return this.#enter(State.idle, Result.updateFailed);
		const check = checkImage(this.#ports.slot, this.#ports.digest, this.#options.chipId, new Uint8Array(scratchBytes));
		if (!check.ok || check.imageLength !== record.imageLength) {
			log(`image in the other slot no longer valid: ${check.ok ? "length changed" : check.reason}`);
			return this.#enter(State.idle, Result.updateFailed);
		}
		record.switches++;
		this.#records.save(record);
		this.#switch();
		this.#enter(State.idle, Result.updateFailed);
	}

	/** Sets the boot slot and reboots; returns only when the platform refused the image. */
	#switch(): void {
		const { boot, log } = this.#ports;
		try {
			boot.setBootToInactive();
		}
		catch (error) {
			log(`boot switch refused: ${(error as Error).message}`);
			return;
		}
		boot.restart();
	}

	#selfTest(): void {
		const { clock, log } = this.#ports;
		let finished = false;
		let deadline: unknown;
		const finish = (passed: boolean, reason?: string) => {
			if (finished) return;
			finished = true;
			clock.clearTimeout(deadline);
			if (passed) {
				this.#ports.boot.markValid();
				return this.#confirmed();
			}
			log(`self-test failed: ${reason ?? "no reason"}`);
			this.#enter(State.idle, Result.updateFailed);
			this.#ports.boot.restart();
		};
		deadline = clock.setTimeout(() => finish(false, "deadline passed"), this.#options.selfTestMs);
		(this.#options.selfTest ?? this.#serverReachable)(finish);
	}

	/** The default self-test: the agent runs and the update server answers. */
	#serverReachable = (done: (passed: boolean, reason?: string) => void): void => {
		const url = parseUrl(this.#record.uri);
		if (typeof url === "string" || isCoap(url.scheme)) return done(true);
		headStatus(this.#ports.http, url, (status) => typeof status === "number" ? done(true) : done(false, `server unreachable: ${status}`));
	};

	#confirmed(): void {
		this.#record.version = this.#ports.boot.runningVersion();
		this.#enter(State.idle, Result.success);
	}

	#reset(): void {
		this.#record.uri = "";
		this.#record.committed = 0;
		this.#record.etag = "";
		this.#enter(State.idle, Result.initial);
	}

	/** Persists the record in its new state first (a final result marked unreported unless `report` is false), then announces it. */
	#enter(state: StateCode, result: ResultCode, reason = "", report = true): void {
		const record = this.#record;
		const firmware = this.#firmware;
		if (this.#closed) return;
		if (firmware.state === state && firmware.result === result && record.state === state) return;
		record.state = state;
		record.result = result;
		record.reportPending = report && isFinalResult(state, result);
		this.#records.save(record);
		this.#jobs.follow(record, this.#ports.clock.now(), reason);
		firmware.move(state, result);
		this.#reportResult();
	}

	#reportResult(): void {
		const record = this.#record;
		if (!record.reportPending) return;
		if (!this.#listener.result(record.updateId, record.result, record.version, this.reasonOf(record.updateId))) return;
		record.reportPending = false;
		this.#records.save(record);
	}
}

/** Results that end an update and go to the server: every failure, and success. */
function isFinalResult(state: StateCode, result: ResultCode): boolean {
	if (result === Result.success) return true;
	return isFailure(result) && (state === State.idle || result === Result.updateFailed);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++)
		if (a[i] !== b[i]) return false;
	return true;
}
