/*
	xs-ota fleet monitor: follows a deployment's jobs (each round's) until they have ended, as the seed's
	monitor.py does: per job its status, executions counted by status, the rollout rate (configured, and seen
	between two looks), whether it was aborted and why, and every thing's status and status details.
	Two sources give the same view:
	  aws  the AWS CLI (aws iot describe-job, list-job-executions-for-job, describe-job-execution for the
	       executions that changed); a look that fails (throttled, network) keeps the last view and says so;
	  sim  a running rehearsal (`xs-ota fleet --target sim --out DIR` writes DIR/monitor.json as it goes).
	While it follows, a progress line is redrawn on stdout when stdout is a terminal; at the end it prints a
	report. It stops when every job that exists has ended and the deployment is over (its last round's job
	exists, or a round ended unsuccessfully, which stops deploy.sh), or after one look with --once.
*/

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { roundJobId } from "./aws-documents";
import type { DeploymentConfig } from "./deployment-config";

export const executionStatuses = ["QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"] as const;
/** DELETED: the job was there at an earlier look and is gone (deploy.sh deletes each round's job once it ended). */
const endedJob = new Set(["COMPLETED", "CANCELED", "DELETION_IN_PROGRESS", "DELETED"]);
const endedExecution = new Set(["SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"]);

export interface ExecutionView {
	thing: string;
	status: string;
	statusDetails: { [key: string]: string };
}

export interface JobView {
	jobId: string;
	/** IN_PROGRESS, COMPLETED, CANCELED, … */
	status: string;
	counts: { [status: string]: number };
	/** The rate the job's rollout configuration allows now, when known. */
	ratePerMinute: number | undefined;
	/** Why the job was canceled (the abort rule, or a person), when it was. */
	abort: string | undefined;
	executions: ExecutionView[];
}

export interface MonitorState {
	/** The source has nothing more to say (the rehearsal ended). */
	finished: boolean;
	jobs: JobView[];
}

export interface JobSource {
	/** The deployment's jobs as they stand; throws when it could not look. */
	look(jobIds: string[]): Promise<MonitorState>;
}

/** The AWS CLI's answers: aws iot … --region REGION --output json. */
export class AwsCliSource implements JobSource {
	#region: string;
	/** Per job: the things' statuses at the last look, and their details. */
	#known = new Map<string, Map<string, ExecutionView>>();
	/** Per job: its view at the last look. */
	#last = new Map<string, JobView>();

	constructor(region: string) {
		this.#region = region;
	}

	#aws(args: string[]): Promise<unknown> {
		return new Promise((resolve, reject) => {
			execFile("aws", [...args, "--region", this.#region, "--output", "json"], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
				if (error) return reject(new Error(stderr.trim().split("\n").pop() || error.message));
				try {
					resolve(stdout.trim() ? JSON.parse(stdout) : {});
				}
				catch {
					reject(new Error(`aws ${args.slice(0, 2).join(" ")} printed no json`));
				}
			});
		});
	}

	async look(jobIds: string[]): Promise<MonitorState> {
		const jobs: JobView[] = [];
		for (const jobId of jobIds) {
			let described: { job?: AwsJob };
			try {
				described = await this.#aws(["iot", "describe-job", "--job-id", jobId]) as { job?: AwsJob };
			}
			catch (error) {
				if (!/ResourceNotFound|not found/i.test((error as Error).message)) throw error;
				const last = this.#last.get(jobId);
				if (last) jobs.push(gone(last));
				continue;
			}
			const job = described.job ?? {};
			const listed = await this.#aws(["iot", "list-job-executions-for-job", "--job-id", jobId]) as { executionSummaries?: AwsExecutionSummary[] };
			const known = this.#known.get(jobId) ?? new Map<string, ExecutionView>();
			this.#known.set(jobId, known);
			for (const summary of listed.executionSummaries ?? []) {
				const thing = (summary.thingArn ?? "").split("/").pop() ?? "";
				const status = summary.jobExecutionSummary?.status ?? "QUEUED";
				const before = known.get(thing);
				if (before?.status === status) continue;
				let statusDetails: { [key: string]: string } = {};
				if (status !== "QUEUED") {
					const execution = await this.#aws(["iot", "describe-job-execution", "--job-id", jobId, "--thing-name", thing]) as { execution?: { statusDetails?: { detailsMap?: { [key: string]: string } } } };
					statusDetails = execution.execution?.statusDetails?.detailsMap ?? {};
				}
				known.set(thing, { thing, status, statusDetails });
			}
			const details = job.jobProcessDetails ?? {};
			const counts: { [status: string]: number } = {
				QUEUED: details.numberOfQueuedThings ?? 0, IN_PROGRESS: details.numberOfInProgressThings ?? 0, SUCCEEDED: details.numberOfSucceededThings ?? 0,
				FAILED: details.numberOfFailedThings ?? 0, REJECTED: details.numberOfRejectedThings ?? 0, TIMED_OUT: details.numberOfTimedOutThings ?? 0,
				CANCELED: details.numberOfCanceledThings ?? 0, REMOVED: details.numberOfRemovedThings ?? 0,
			};
			const status = job.status ?? "UNKNOWN";
			this.#last.set(jobId, {
				jobId, status, counts,
				ratePerMinute: job.jobExecutionsRolloutConfig?.maximumPerMinute,
				abort: status === "CANCELED" ? [job.reasonCode, job.comment].filter(Boolean).join(": ") || (job.forceCanceled ? "canceled with --force" : "canceled") : undefined,
				executions: [...known.values()],
			});
			jobs.push(this.#last.get(jobId)!);
		}
		return { finished: false, jobs };
	}
}

/**
	A job deleted since the last look: COMPLETED when every execution had ended by then (the list holds them all:
	deletion came after the end), DELETED otherwise; counted from the executions.
*/
function gone(last: JobView): JobView {
	if (endedJob.has(last.status)) return last;
	const counts: { [status: string]: number } = {};
	for (const execution of last.executions) counts[execution.status] = (counts[execution.status] ?? 0) + 1;
	const ended = last.executions.every((execution) => endedExecution.has(execution.status));
	return { ...last, status: ended ? "COMPLETED" : "DELETED", counts };
}

interface AwsJob {
	status?: string;
	forceCanceled?: boolean;
	reasonCode?: string;
	comment?: string;
	jobExecutionsRolloutConfig?: { maximumPerMinute?: number };
	jobProcessDetails?: { [count: string]: number };
}

interface AwsExecutionSummary {
	thingArn?: string;
	jobExecutionSummary?: { status?: string };
}

/** A running rehearsal's DIR/monitor.json. */
export class RehearsalSource implements JobSource {
	constructor(readonly file: string) {}

	async look(): Promise<MonitorState> {
		let text: string;
		try {
			text = fs.readFileSync(this.file, "utf8");
		}
		catch {
			throw new Error(`no rehearsal writes ${this.file} (yet): start xs-ota fleet --target sim --out with that folder`);
		}
		return JSON.parse(text) as MonitorState;
	}
}

/** Writes the rehearsal's state for a monitor, whole or not at all (a monitor may read at any moment). */
export function writeMonitorState(file: string, state: MonitorState): void {
	fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(state)}\n`);
	fs.renameSync(`${file}.tmp`, file);
}

/** Looks that may fail in a row before anything was seen, before the monitor gives up (exit 1). */
const maxFailedFirstLooks = 5;

export interface MonitorOptions {
	config: DeploymentConfig;
	source: JobSource;
	intervalMs: number;
	once: boolean;
	out: NodeJS.WriteStream;
}

/** What the monitor ended with: 0 every job completed with all executions succeeded; 3 one did not; 4 still running. */
export async function monitor(options: MonitorOptions): Promise<{ exitCode: number; state: MonitorState }> {
	const { config, source, out } = options;
	const jobIds = Array.from({ length: config.rounds }, (_, index) => roundJobId(config, index + 1));
	const terminal = out.isTTY === true;
	let state: MonitorState = { finished: false, jobs: [] };
	let previous: { atMs: number; moved: number } | undefined;
	let failures = 0;
	for (;;) {
		let note = "";
		try {
			state = await source.look(jobIds);
			failures = 0;
		}
		catch (error) {
			// A failed look is not the end: the last view stands until a look succeeds.
			failures++;
			note = `look failed (${failures} in a row): ${(error as Error).message}`;
			if (failures >= maxFailedFirstLooks && !state.jobs.length) throw new Error(`cannot follow the deployment: ${(error as Error).message}`);
		}
		// The rate seen: executions that left QUEUED since the last look, a minute.
		const current = state.jobs[state.jobs.length - 1];
		const moved = current ? Object.values(current.counts).reduce((sum, count) => sum + count, 0) - (current.counts.QUEUED ?? 0) : 0;
		const now = Date.now();
		const seen = previous && now > previous.atMs ? ((moved - previous.moved) * 60_000) / (now - previous.atMs) : undefined;
		previous = { atMs: now, moved };
		if (terminal) out.write(`\r\x1b[K${progressLine(state, seen, note)}`);
		else if (note) process.stderr.write(`monitor: ${note}\n`);
		if (options.once || deploymentOver(state, jobIds)) break;
		await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
	}
	if (terminal) out.write("\n");
	out.write(report(state));
	const over = deploymentOver(state, jobIds);
	const unsuccessful = state.jobs.some((job) => endedJob.has(job.status) && (job.status !== "COMPLETED" || unsuccessfulCount(job) > 0));
	return { exitCode: unsuccessful ? 3 : over ? 0 : 4, state };
}

function unsuccessfulCount(job: JobView): number {
	return Object.entries(job.counts).filter(([status]) => status !== "SUCCEEDED").reduce((sum, [, count]) => sum + count, 0);
}

/** Every job there has ended, and either the last round's is among them, or one ended unsuccessfully. */
function deploymentOver(state: MonitorState, jobIds: string[]): boolean {
	if (state.finished) return true;
	if (!state.jobs.length || !state.jobs.every((job) => endedJob.has(job.status))) return false;
	return state.jobs.some((job) => job.jobId === jobIds[jobIds.length - 1]) || state.jobs.some((job) => job.status !== "COMPLETED" || unsuccessfulCount(job) > 0);
}

function countsText(job: JobView): string {
	return executionStatuses.filter((status) => job.counts[status]).map((status) => `${status} ${job.counts[status]}`).join(" · ") || "no executions";
}

export function progressLine(state: MonitorState, seenPerMinute: number | undefined, note: string): string {
	const job = state.jobs[state.jobs.length - 1];
	if (!job) return note || "no job of the deployment yet";
	return [
		`${job.jobId} ${job.status}`, countsText(job),
		...(job.ratePerMinute !== undefined ? [`rate ${job.ratePerMinute}/min`] : []),
		...(seenPerMinute !== undefined ? [`seen ${seenPerMinute.toFixed(1)}/min`] : []),
		...(job.abort ? [`aborted: ${job.abort}`] : []),
		...(note ? [note] : []),
	].join(" · ");
}

export function report(state: MonitorState): string {
	if (!state.jobs.length) return "no job of the deployment was found\n";
	const lines: string[] = [];
	for (const job of state.jobs) {
		lines.push(`job ${job.jobId}: ${job.status}${job.abort ? ` (aborted: ${job.abort})` : ""}`, `  executions: ${countsText(job)}`);
		if (job.ratePerMinute !== undefined) lines.push(`  rollout rate: ${job.ratePerMinute} a minute`);
		const width = Math.max(5, ...job.executions.map((execution) => execution.thing.length));
		for (const execution of [...job.executions].sort((a, b) => a.thing.localeCompare(b.thing))) {
			const details = Object.entries(execution.statusDetails).map(([key, value]) => `${key}=${value}`).join(" ");
			lines.push(`  ${execution.thing.padEnd(width)}  ${execution.status.padEnd(11)}  ${details}`.trimEnd());
		}
	}
	return `${lines.join("\n")}\n`;
}
