/*
	LwM2M Object 5 (Firmware Update, v1.1) served over the agent: the agent's FirmwareObject, record and job
	list stay the one source of truth, and every resource here reads or drives them.

	  0 Package           W   a push (Block1, written as it arrives; opaque, TLV or SenML); empty resets the object
	  1 Package URI       RW  http(s):// or coap:// pull; empty resets
	  2 Update            E   installs through the maintenance gate (11 deferred while it holds)
	  3 State, 5 Update Result  R
	  6 PkgName, 7 PkgVersion   R   of the verified image (after Downloaded)
	  8 Protocol Support  R   0 CoAP, 2 HTTP 1.1, 3 HTTPS 1.1          9 Delivery Method  R  2 pull and push
	  10 Cancel           E   downloading or downloaded → idle with 10; refused while updating
	  11 Severity         RW  0 critical, 1 major, 2 minor: for the next request, then the job's
	  12 Last State Change Time  R  (seconds since 1970)
	  13 Maximum Defer Period    RW (seconds) for the next request, then the job's
*/

import type { Agent, JobOptions, PushTransfer } from "../agent/agent";
import { State } from "../agent/firmware-object";
import { Source } from "../agent/record";
import { type SeverityName, severityNames } from "../agent/job-list";
import { Block1Receiver } from "../coap/block";
import { type Block, Code, ContentFormat } from "../coap/message";
import { Kind, type Value } from "./model";
import { PackageReader } from "./package-reader";
import { ResourceTable } from "./resource-table";

const protocols: readonly Value[] = [0, 2, 3];
const pullAndPush = 2;

export class FirmwareUpdateObject extends ResourceTable {
	#agent: Agent;
	#severity: SeverityName = "major";
	#maxDeferSeconds: number;
	#push: PushTransfer | undefined;
	#parts = new Block1Receiver();
	#reader: PackageReader | undefined;
	/** Whether the push took every byte of the current part; #sink is made once, not per part. */
	#written = true;
	#sink = (bytes: Uint8Array): boolean => (this.#written = this.#written && this.#push !== undefined && this.#push.write(bytes));
	#defer: (action: () => void) => void;

	/** `defer` runs an action a moment later: Update's 2.04 must go out before the install reboots. */
	constructor(agent: Agent, defaultMaxDeferSeconds: number, defer: (action: () => void) => void = (action) => action()) {
		super(5, "1.1", [
			{ id: 0, kind: Kind.opaque, write: (value) => this.#writeWhole(value as Uint8Array) },
			{ id: 1, kind: Kind.string, read: () => agent.record.source === 0 ? agent.packageUri : "", write: (value) => this.#writeUri(value as string) },
			{ id: 2, kind: Kind.none, execute: () => this.#update() },
			{ id: 3, kind: Kind.integer, read: () => agent.state },
			{ id: 5, kind: Kind.integer, read: () => agent.result },
			{ id: 6, kind: Kind.string, read: () => agent.packageName },
			{ id: 7, kind: Kind.string, read: () => (agent.state === State.idle && agent.result !== 1 ? "" : agent.record.version) },
			{ id: 8, kind: Kind.integer, multiple: true, read: () => protocols },
			{ id: 9, kind: Kind.integer, read: () => pullAndPush },
			{ id: 10, kind: Kind.none, execute: () => this.#cancel() },
			{ id: 11, kind: Kind.integer, read: () => severityNames.indexOf(this.#job()?.parameters.severity ?? this.#severity), write: (value) => this.#writeSeverity(value as number) },
			{ id: 12, kind: Kind.time, read: () => Math.floor((this.#job()?.lastActivity ?? 0) / 1000) },
			{ id: 13, kind: Kind.unsigned, read: () => this.#job()?.parameters.maxDeferSeconds ?? this.#maxDeferSeconds, write: (value) => this.#writeMaxDefer(value as number) },
		]);
		this.#agent = agent;
		this.#maxDeferSeconds = defaultMaxDeferSeconds;
		this.#defer = defer;
	}

	/** A pushed Package is being written: the server sends its next block when it likes. */
	get pushing(): boolean {
		return this.#agent.state === State.downloading && this.#agent.record.source === Source.push;
	}

	/** The current job, while one is under way (its parameters are the ones the request was given). */
	#job() {
		const agent = this.#agent, updateId = agent.record.updateId;
		const jobs = agent.jobs;
		for (let i = 0; i < jobs.length; i++)
			if (jobs[i].updateId === updateId && jobs[i].source !== "aws") return jobs[i];
		return undefined;
	}

	#options(): JobOptions {
		return { severity: this.#severity, maxDeferSeconds: this.#maxDeferSeconds };
	}

	#writeUri(uri: string): number {
		return this.#drive(() => this.#agent.request({ ...this.#options(), uri }));
	}

	#update(): number {
		const agent = this.#agent;
		if (agent.state !== State.downloaded) return Code.methodNotAllowed;
		// The install may reboot at once (esp_restart does not return; on lin restart() throws): answer first.
		this.#defer(() => {
			if (agent.state === State.downloaded) agent.install();
		});
		return Code.changed;
	}

	#cancel(): number {
		const state = this.#agent.state;
		if (state !== State.downloading && state !== State.downloaded) return Code.methodNotAllowed;
		this.#endPush();
		return this.#drive(() => this.#agent.cancel());
	}

	#writeSeverity(value: number): number {
		if (!(value >= 0 && value < severityNames.length)) return Code.badRequest;
		this.#severity = severityNames[value];
		return Code.changed;
	}

	#writeMaxDefer(value: number): number {
		if (!(value >= 0 && value <= 0xffffffff)) return Code.badRequest;
		this.#maxDeferSeconds = value;
		return Code.changed;
	}

	/** A Package written in one message: a push of one block, or empty to reset. */
	#writeWhole(bytes: Uint8Array): number {
		return this.writePackage({ num: 0, more: false, szx: 6 }, bytes, bytes.length, ContentFormat.opaque);
	}

	/**
		One Block1 part of a Package write (RFC 7959 §2.3) in `format` (package-reader.ts: opaque, TLV, SenML).
		Block 0 starts a push (an empty package in one part: a reset); the next part in order is written; the
		part just written, sent again, is answered again; any other part is 4.08 Request Entity Incomplete. A
		part that is not what its format says is 4.00, and the push ends with 6. `size` is Size1 when the server
		sent it (0 otherwise): the package's own size only when opaque.
	*/
	writePackage(block: Block, payload: Uint8Array, size: number, format: number): number {
		const agent = this.#agent;
		if (block.num === 0) {
			if (!block.more && emptyPackage(payload, format)) {
				this.#push = undefined;
				return this.#drive(() => agent.request({ uri: "" }));
			}
			let push: PushTransfer | undefined;
			const code = this.#drive(() => (push = agent.beginPush(this.#options(), format === ContentFormat.opaque ? size : 0)));
			if (code !== Code.changed) return code;
			if (!push) return agent.result === 2 ? Code.requestEntityTooLarge : Code.changed;
			this.#push = push;
			this.#reader = new PackageReader(format);
			this.#parts.reset();
		}
		const push = this.#push, reader = this.#reader;
		if (!push || !reader || agent.state !== State.downloading) return Code.requestEntityIncomplete;
		const part = this.#parts.part(block, payload.length);
		if (part === "duplicate") return block.more ? Code.continue : Code.changed;
		if (part === "out-of-order") return Code.requestEntityIncomplete;
		this.#written = true;
		const malformed = reader.feed(payload, this.#sink) ?? (block.more ? undefined : reader.end());
		if (!this.#written) {
			this.#endPush();
			return agent.result === 2 ? Code.requestEntityTooLarge : Code.requestEntityIncomplete;
		}
		if (malformed) {
			this.#endPush();
			push.refuse(`package write: ${malformed}`);
			return Code.badRequest;
		}
		if (block.more) return Code.continue;
		this.#endPush();
		push.finish();
		return Code.changed;
	}

	#endPush(): void {
		this.#push = undefined;
		this.#reader = undefined;
	}

	/** Runs an agent call; its refusals become CoAP codes. */
	#drive(action: () => void): number {
		try {
			action();
			return Code.changed;
		}
		catch (error) {
			const message = (error as Error).message;
			return message === "shutting down" ? Code.serviceUnavailable : Code.methodNotAllowed;
		}
	}
}

/** Whether a one-part Package write holds no package (a reset): empty, or a format's empty value ([{"vd":""}]). */
function emptyPackage(payload: Uint8Array, format: number): boolean {
	if (!payload.length || format === ContentFormat.opaque) return !payload.length;
	let bytes = 0;
	const reader = new PackageReader(format);
	const malformed = reader.feed(payload, (part) => ((bytes += part.length), true)) ?? reader.end();
	return !malformed && !bytes;
}
