/*
	The AWS IoT Jobs device API over MQTT, as the documentation describes it (jobs-mqtt-api):
	  $aws/things/T/jobs/get                 → get/accepted {inProgressJobs, queuedJobs}
	  $aws/things/T/jobs/start-next          → start-next/accepted {execution?}  (QUEUED → IN_PROGRESS)
	  $aws/things/T/jobs/$next/get, J/get    → …/get/accepted {execution?} | …/get/rejected
	  $aws/things/T/jobs/J/update            → …/update/accepted | …/update/rejected
	  notify-next {execution?} when the next pending execution changes; notify {jobs} when the pending list does.
	Timestamps are seconds since the epoch. Every update request is logged on its execution, accepted or not.
*/

export type ExecutionStatus = "QUEUED" | "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "REJECTED" | "TIMED_OUT" | "CANCELED" | "REMOVED";

export type StatusDetails = { [key: string]: string };

export interface StatusUpdate {
	/** Milliseconds since the epoch, when the request arrived. */
	at: number;
	status: unknown;
	statusDetails: unknown;
	expectedVersion: unknown;
	clientToken: unknown;
	/** "accepted", or the rejection's code. */
	outcome: string;
}

export interface JobExecution {
	thingName: string;
	jobId: string;
	status: ExecutionStatus;
	statusDetails: StatusDetails;
	jobDocument: unknown;
	queuedAt: number;
	startedAt: number | undefined;
	lastUpdatedAt: number;
	versionNumber: number;
	executionNumber: number;
	stepTimeoutInMinutes: number | undefined;
	updates: StatusUpdate[];
}

type Body = { [key: string]: unknown };
type Rejection = { code: string; message: string; execution?: JobExecution };

const deviceStatuses = new Set(["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"]);
export const terminalStatuses = new Set<ExecutionStatus>(["SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"]);
const maxDetails = 10;
const maxClientTokenLength = 64;
const jobIdPattern = /^[a-zA-Z0-9_-]{1,64}$/;

export class JobsService {
	/** Every execution per thing, in creation order. */
	readonly things = new Map<string, JobExecution[]>();
	/** Every update request received, in order, including those for executions that do not exist. */
	readonly updateLog: (StatusUpdate & { thing: string; jobId: string })[] = [];
	#send: (topic: string, body: Body) => void;
	#now: () => number;
	#executionNumbers = new Map<string, number>();
	#lastNext = new Map<string, string | undefined>();
	#lastPending = new Map<string, string>();

	constructor(send: (topic: string, body: Body) => void, now = () => Date.now()) {
		this.#send = send;
		this.#now = now;
	}

	executions(thing: string): JobExecution[] {
		return this.things.get(thing) ?? [];
	}

	/** Queues a new execution of `jobId` for `thing` and tells the thing if it became the next one. */
	create(thing: string, jobId: string, jobDocument: unknown): JobExecution {
		if (!jobIdPattern.test(jobId)) throw new Error(`bad job id ${jobId}`);
		const executions = this.things.get(thing) ?? [];
		if (executions.some((execution) => execution.jobId === jobId && !terminalStatuses.has(execution.status)))
			throw new Error(`job ${jobId} is already pending on ${thing}`);
		const executionNumber = (this.#executionNumbers.get(jobId) ?? 0) + 1;
		this.#executionNumbers.set(jobId, executionNumber);
		const now = this.#seconds();
		const execution: JobExecution = {
			thingName: thing, jobId, status: "QUEUED", statusDetails: {}, jobDocument, queuedAt: now, startedAt: undefined,
			lastUpdatedAt: now, versionNumber: 1, executionNumber, stepTimeoutInMinutes: undefined, updates: [],
		};
		executions.push(execution);
		this.things.set(thing, executions);
		this.#changed(thing);
		return execution;
	}

	/** What the cloud side can do to a pending execution: cancel, time out or remove it. */
	end(thing: string, jobId: string, status: "CANCELED" | "TIMED_OUT" | "REMOVED" = "CANCELED"): void {
		const execution = this.#pending(thing).find((candidate) => candidate.jobId === jobId);
		if (!execution) throw new Error(`no pending job ${jobId} on ${thing}`);
		execution.status = status;
		execution.versionNumber++;
		execution.lastUpdatedAt = this.#seconds();
		this.#changed(thing);
	}

	/** DeleteJob with force: pending executions end REMOVED (their things are told), then the job's executions are forgotten. */
	delete(jobId: string): void {
		for (const [thing, executions] of this.things) {
			if (executions.some((execution) => execution.jobId === jobId && !terminalStatuses.has(execution.status))) this.end(thing, jobId, "REMOVED");
			this.things.set(thing, executions.filter((execution) => execution.jobId !== jobId));
		}
	}

	/** The next pending execution: IN_PROGRESS ones first, then QUEUED, each in creation order. */
	next(thing: string): JobExecution | undefined {
		const pending = this.#pending(thing);
		return pending.find((execution) => execution.status === "IN_PROGRESS") ?? pending.find((execution) => execution.status === "QUEUED");
	}

	/** Handles one device request; false when the topic is not a Jobs request topic. */
	handle(topic: string, payload: Buffer): boolean {
		const match = /^\$aws\/things\/([^/]+)\/jobs\/(.+)$/.exec(topic);
		if (!match) return false;
		const [, thing, rest] = match;
		const base = `$aws/things/${thing}/jobs`;
		let operation: { reply: string; run: (body: Body) => Body | Rejection } | undefined;
		if (rest === "get") operation = { reply: `${base}/get`, run: () => this.#list(thing) };
		else if (rest === "start-next") operation = { reply: `${base}/start-next`, run: (body) => this.#startNext(thing, body) };
		else {
			const parts = /^([^/]+)\/(get|update)$/.exec(rest);
			if (!parts) return false;
			const [, jobId, verb] = parts;
			const reply = `${base}/${jobId}/${verb}`;
			if (verb === "get") operation = { reply, run: (body) => this.#describe(thing, jobId, body) };
			else operation = { reply, run: (body) => this.#update(thing, jobId, body) };
		}
		let body: Body;
		try {
			const text = payload.toString("utf8").trim();
			const parsed = text ? JSON.parse(text) : {};
			if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
			body = parsed;
		}
		catch {
			this.#send(`${operation.reply}/rejected`, this.#rejection({ code: "InvalidJson", message: "the request is not a json object" }, undefined));
			return true;
		}
		const clientToken = body.clientToken;
		if (clientToken !== undefined && (typeof clientToken !== "string" || clientToken.length > maxClientTokenLength)) {
			this.#send(`${operation.reply}/rejected`, this.#rejection({ code: "InvalidRequest", message: "clientToken must be a string of at most 64 characters" }, undefined));
			return true;
		}
		const answer = operation.run(body);
		if (isRejection(answer)) this.#send(`${operation.reply}/rejected`, this.#rejection(answer, clientToken));
		else this.#send(`${operation.reply}/accepted`, { ...answer, timestamp: this.#seconds(), ...(clientToken === undefined ? {} : { clientToken }) });
		this.#changed(thing);
		return true;
	}

	#list(thing: string): Body {
		const pending = this.#pending(thing);
		return {
			inProgressJobs: pending.filter((execution) => execution.status === "IN_PROGRESS").map(summary),
			queuedJobs: pending.filter((execution) => execution.status === "QUEUED").map(summary),
		};
	}

	#startNext(thing: string, body: Body): Body | Rejection {
		const details = body.statusDetails;
		if (details !== undefined && !validDetails(details)) return { code: "InvalidRequest", message: "statusDetails must map at most 10 names to strings" };
		const execution = this.next(thing);
		if (!execution) return {};
		if (execution.status === "QUEUED") {
			this.#apply(execution, "IN_PROGRESS", details as StatusDetails | undefined);
			if (typeof body.stepTimeoutInMinutes === "number") execution.stepTimeoutInMinutes = body.stepTimeoutInMinutes;
		}
		return { execution: executionData(execution, true) };
	}

	#describe(thing: string, jobId: string, body: Body): Body | Rejection {
		const includeDocument = body.includeJobDocument !== false;
		if (jobId === "$next") {
			const execution = this.next(thing);
			return execution ? { execution: executionData(execution, includeDocument) } : {};
		}
		const execution = this.#find(thing, jobId, body.executionNumber);
		if (!execution) return { code: "ResourceNotFound", message: `no execution of job ${jobId} on ${thing}` };
		if (terminalStatuses.has(execution.status)) return { code: "TerminalStateReached", message: `job ${jobId} is ${execution.status}`, execution };
		return { execution: executionData(execution, includeDocument) };
	}

	#update(thing: string, jobId: string, body: Body): Body | Rejection {
		const answer = this.#checkedUpdate(thing, jobId, body);
		const execution = isRejection(answer) ? answer.execution : this.#find(thing, jobId, body.executionNumber);
		const update: StatusUpdate = {
			at: this.#now(), status: body.status, statusDetails: body.statusDetails, expectedVersion: body.expectedVersion,
			clientToken: body.clientToken, outcome: isRejection(answer) ? answer.code : "accepted",
		};
		execution?.updates.push(update);
		this.updateLog.push({ thing, jobId, ...update });
		return answer;
	}

	#checkedUpdate(thing: string, jobId: string, body: Body): Body | Rejection {
		if (jobId === "$next" || !jobIdPattern.test(jobId)) return { code: "InvalidTopic", message: `cannot update ${jobId}` };
		const execution = this.#find(thing, jobId, body.executionNumber);
		if (!execution) return { code: "ResourceNotFound", message: `no execution of job ${jobId} on ${thing}` };
		const { status, statusDetails, expectedVersion } = body;
		if (typeof status !== "string" || !deviceStatuses.has(status))
			return { code: "InvalidRequest", message: "status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED", execution };
		if (statusDetails !== undefined && !validDetails(statusDetails))
			return { code: "InvalidRequest", message: "statusDetails must map at most 10 names to strings", execution };
		if (expectedVersion !== undefined && !/^\d+$/.test(String(expectedVersion)))
			return { code: "InvalidRequest", message: "expectedVersion must be a number", execution };
		if (terminalStatuses.has(execution.status))
			return { code: "InvalidStateTransition", message: `job ${jobId} is already ${execution.status}`, execution };
		if (expectedVersion !== undefined && Number(expectedVersion) !== execution.versionNumber)
			return { code: "VersionMismatch", message: `expected version ${expectedVersion}, current ${execution.versionNumber}`, execution };
		this.#apply(execution, status as ExecutionStatus, statusDetails as StatusDetails | undefined);
		if (typeof body.stepTimeoutInMinutes === "number") execution.stepTimeoutInMinutes = body.stepTimeoutInMinutes;
		const answer: Body = {};
		if (body.includeJobExecutionState === true) answer.executionState = executionState(execution);
		if (body.includeJobDocument === true) answer.jobDocument = execution.jobDocument;
		return answer;
	}

	#apply(execution: JobExecution, status: ExecutionStatus, details: StatusDetails | undefined): void {
		const now = this.#seconds();
		if (execution.status === "QUEUED" && status !== "QUEUED") execution.startedAt = now;
		execution.status = status;
		if (details !== undefined) execution.statusDetails = { ...details };
		execution.versionNumber++;
		execution.lastUpdatedAt = now;
	}

	/** The given execution number, or the latest execution of the job. */
	#find(thing: string, jobId: string, executionNumber: unknown): JobExecution | undefined {
		const matches = this.executions(thing).filter((execution) => execution.jobId === jobId);
		if (typeof executionNumber === "number") return matches.find((execution) => execution.executionNumber === executionNumber);
		return matches[matches.length - 1];
	}

	#pending(thing: string): JobExecution[] {
		return this.executions(thing).filter((execution) => execution.status === "QUEUED" || execution.status === "IN_PROGRESS");
	}

	#rejection(rejection: Rejection, clientToken: unknown): Body {
		const body: Body = { code: rejection.code, message: rejection.message, timestamp: this.#seconds() };
		if (clientToken !== undefined) body.clientToken = clientToken;
		if (rejection.execution) body.executionState = executionState(rejection.execution);
		return body;
	}

	/** Publishes notify-next and notify when what the thing would see has changed since it last heard. */
	#changed(thing: string): void {
		const next = this.next(thing);
		const nextKey = next && `${next.jobId}#${next.executionNumber}`;
		if (this.#lastNext.get(thing) !== nextKey) {
			this.#lastNext.set(thing, nextKey);
			this.#send(`$aws/things/${thing}/jobs/notify-next`, { timestamp: this.#seconds(), ...(next ? { execution: executionData(next, true) } : {}) });
		}
		const list = this.#list(thing) as { inProgressJobs: Body[]; queuedJobs: Body[] };
		const pendingKey = this.#pending(thing).map((execution) => `${execution.jobId}#${execution.executionNumber}`).join(",");
		if ((this.#lastPending.get(thing) ?? "") !== pendingKey) {
			this.#lastPending.set(thing, pendingKey);
			const jobs: Body = {};
			if (list.inProgressJobs.length) jobs.IN_PROGRESS = list.inProgressJobs;
			if (list.queuedJobs.length) jobs.QUEUED = list.queuedJobs;
			this.#send(`$aws/things/${thing}/jobs/notify`, { timestamp: this.#seconds(), jobs });
		}
	}

	#seconds(): number {
		return Math.floor(this.#now() / 1000);
	}
}

function isRejection(answer: Body | Rejection): answer is Rejection {
	return typeof (answer as Rejection).code === "string" && typeof (answer as Rejection).message === "string";
}

/** A flat map of at most 10 names ([a-zA-Z0-9:_-], ≤ 128) to strings (1..1024, no control characters). */
export function validDetails(details: unknown): details is StatusDetails {
	if (!details || typeof details !== "object" || Array.isArray(details)) return false;
	const entries = Object.entries(details);
	if (entries.length > maxDetails) return false;
	return entries.every(([key, value]) => /^[a-zA-Z0-9:_-]{1,128}$/.test(key)
		&& typeof value === "string" && value.length >= 1 && value.length <= 1024 && !/\p{C}/u.test(value));
}

function executionState(execution: JobExecution): Body {
	return { status: execution.status, statusDetails: { ...execution.statusDetails }, versionNumber: execution.versionNumber };
}

function executionData(execution: JobExecution, includeDocument: boolean): Body {
	const data: Body = {
		jobId: execution.jobId,
		thingName: execution.thingName,
		status: execution.status,
		queuedAt: execution.queuedAt,
		lastUpdatedAt: execution.lastUpdatedAt,
		versionNumber: execution.versionNumber,
		executionNumber: execution.executionNumber,
	};
	if (Object.keys(execution.statusDetails).length) data.statusDetails = { ...execution.statusDetails };
	if (execution.startedAt !== undefined) data.startedAt = execution.startedAt;
	if (includeDocument) data.jobDocument = execution.jobDocument;
	return data;
}

function summary(execution: JobExecution): Body {
	const data: Body = {
		jobId: execution.jobId, queuedAt: execution.queuedAt, lastUpdatedAt: execution.lastUpdatedAt,
		versionNumber: execution.versionNumber, executionNumber: execution.executionNumber,
	};
	if (execution.startedAt !== undefined) data.startedAt = execution.startedAt;
	return data;
}
