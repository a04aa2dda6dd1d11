/*
	The report of a simulated deployment, written as report.json and (report-html.ts) report.html:
	  per round: the outcome and why, the job's status, counts per execution status, the abort decision, download
	  time p50/p90/p99, stream retries and re-fetched bytes, power cuts, the rollout's batches, executions over
	  time, and every execution;
	  for the whole deployment: the ALARM_CONFIG alarms, and the wall time, peak memory and boards per second.
	The alarms are the PutMetricAlarm documents `--target aws` writes (one per alarm and round: deploy.sh
	points each at the round's job), evaluated over the downloadTime data that AWS's pipeline would put for the
	same executions: each terminal execution becomes the job execution event AWS IoT would publish (with the
	statusDetails the device left), and tools/fleet/download-metric.ts's executionDatum turns it into a datum.
*/

import { createHash } from "node:crypto";
import { evaluateAlarm, statistic, type AlarmEvaluation, type MetricAlarm } from "./alarms";
import { metricAlarm, type Package } from "../../tools/fleet/aws-documents";
import type { AlarmRule, DeploymentConfig } from "../../tools/fleet/deployment-config";
import { downloadTimeMetric, executionDatum, type JobExecutionEvent, type MetricDatum } from "../../tools/fleet/download-metric";
import type { FaultProfile } from "./faults";
import type { BoardDetail, FleetRun, RoundRun } from "./fleet-sim";
import { executionStatuses, type Execution, type ExecutionStatus, type StatusCounts } from "./rollout";

export interface ExecutionReport {
	thing: string;
	status: ExecutionStatus;
	notifiedAtSeconds: number;
	startedAtSeconds: number | undefined;
	endedAtSeconds: number | undefined;
	downloadSeconds: number | undefined;
	/** What the device reported after the in-progress timer had expired (refused). */
	lateStatus: string | undefined;
	result: string | undefined;
	reason: string | undefined;
	/** All the device last put in statusDetails (downloadTime among them). */
	statusDetails: { [key: string]: string };
	firmware: string | undefined;
	retries: number;
	refetchedBytes: number;
	cuts: number;
	/** Power-ons of the board for this execution, and boots within them. */
	powerOns: number;
	boots: number;
	/** Where the execution's virtual time went: the board's own clock, off after cuts, on its link. */
	deviceSeconds: number;
	offSeconds: number;
	linkSeconds: number;
	mqttBytes: number;
	linkKbps: number;
	faults: string[];
	error: string | undefined;
}

export interface RoundReport {
	round: number;
	jobId: string;
	outcome: "succeeded" | "failed" | "aborted";
	why: string;
	jobStatus: "COMPLETED" | "CANCELED" | "IN_PROGRESS";
	/** Fleet time of the round's start, from the deployment's start, and its length. */
	startSeconds: number;
	durationSeconds: number;
	counts: StatusCounts;
	abort: {
		atSeconds: number;
		failureType: string;
		thresholdPercentage: number;
		minNumberOfExecutedThings: number;
		completed: number;
		failures: number;
		percentage: number;
	} | undefined;
	downloadSeconds: { samples: number; p50: number; p90: number; p99: number } | undefined;
	retries: number;
	refetchedBytes: number;
	powerCuts: number;
	batches: { minute: number; ratePerMinute: number; notified: number }[];
	/** Executions per status over the round's fleet time. */
	timeline: { atSeconds: number; counts: StatusCounts }[];
	executions: ExecutionReport[];
}

export interface AlarmReport extends AlarmEvaluation {
	rule: AlarmRule;
	/** The round's job, whose jobId dimension the alarm watched. */
	jobId: string;
	/** The PutMetricAlarm document evaluated. */
	document: MetricAlarm;
	/** False for a metric the simulator does not produce (only downloadTime). */
	evaluated: boolean;
}

export interface FleetReport {
	target: "sim";
	outcome: string;
	config: {
		source: string;
		jobId: string;
		streamId: string;
		rounds: number;
		targetSelection: string;
		cleanUp: boolean;
		rollout: DeploymentConfig["rollout"];
		abortCriteria: DeploymentConfig["abortCriteria"];
		inProgressTimeoutInMinutes: number | undefined;
	};
	image: { file: string; size: number; version: string; md5: string; form: string; fileId: number; signed: boolean };
	jobDocument: Record<string, unknown>;
	fleet: { boards: number; concurrency: number; faults: FaultProfile };
	roundsRun: number;
	rounds: RoundReport[];
	alarms: AlarmReport[];
	wall: { seconds: number; peakRssBytes: number; boardsPerSecond: number; virtualSeconds: number };
}

export interface ReportInputs {
	config: DeploymentConfig;
	pkg: Package;
	boards: number;
	concurrency: number;
	faults: FaultProfile;
	wallMs: number;
	peakRssBytes: number;
}

const maxTimelinePoints = 400;

export function buildReport(run: FleetRun, inputs: ReportInputs): FleetReport {
	const { config, pkg } = inputs;
	const rounds = run.rounds.map(roundReport);
	const data = metricData(run);
	const last = run.rounds[run.rounds.length - 1];
	const endMs = last ? last.startMs + last.rollout.endMs : 0;
	const notified = run.rounds.reduce((sum, round) => sum + round.rollout.executions.length, 0);
	const failed = rounds.find((round) => round.outcome !== "succeeded");
	return {
		target: "sim",
		outcome: failed
			? `round ${failed.round} of ${config.rounds} ${failed.outcome}: ${failed.why}${config.rounds > failed.round ? `; rounds ${failed.round + 1} to ${config.rounds} were skipped` : ""}`
			: `${config.rounds === 1 ? "the deployment" : `all ${config.rounds} rounds`} succeeded: ${rounds[rounds.length - 1]?.why ?? ""}`,
		config: {
			source: config.source, jobId: config.jobId, streamId: config.streamId, rounds: config.rounds, targetSelection: config.targetSelection,
			cleanUp: config.cleanUp, rollout: config.rollout, abortCriteria: config.abortCriteria, inProgressTimeoutInMinutes: config.inProgressTimeoutInMinutes,
		},
		image: {
			file: pkg.fileName, size: pkg.bytes.length, version: pkg.version, md5: createHash("md5").update(pkg.bytes).digest("hex"),
			form: pkg.form, fileId: pkg.fileId, signed: pkg.signature !== undefined,
		},
		jobDocument: run.document,
		fleet: { boards: inputs.boards, concurrency: inputs.concurrency, faults: inputs.faults },
		roundsRun: rounds.length,
		rounds,
		alarms: run.rounds.flatMap((round) => config.alarms.map((rule): AlarmReport => {
			const document = metricAlarm(rule, round.jobId) as unknown as MetricAlarm;
			if (rule.namespace !== downloadTimeMetric.namespace || rule.metricName !== downloadTimeMetric.metricName)
				return { rule, jobId: round.jobId, document, evaluated: false, state: "INSUFFICIENT_DATA", firstAlarmSeconds: undefined, transitions: [], periods: [] };
			return { rule, jobId: round.jobId, document, evaluated: true, ...evaluateAlarm(document, downloadTimeMetric.namespace, data, run.epochMs, run.epochMs + endMs) };
		})),
		wall: {
			seconds: round3(inputs.wallMs / 1000),
			peakRssBytes: inputs.peakRssBytes,
			boardsPerSecond: round3(notified / Math.max(inputs.wallMs / 1000, 0.001)),
			virtualSeconds: round3(endMs / 1000),
		},
	};
}

/** The job execution events AWS IoT would publish for the deployment's terminal executions. */
export function executionEvents(run: FleetRun): JobExecutionEvent[] {
	return run.rounds.flatMap((round) => round.rollout.executions.flatMap((execution) => execution.endedAtMs === undefined ? [] : [{
		eventType: "JOB_EXECUTION", jobId: round.jobId, thingArn: `thing/${execution.thing}`, status: execution.status,
		timestamp: run.epochMs + round.startMs + execution.endedAtMs, statusDetails: execution.detail?.statusDetails ?? {},
	}]));
}

/** The downloadTime data AWS's pipeline would put for the deployment. */
export function metricData(run: FleetRun): MetricDatum[] {
	return executionEvents(run).flatMap((event) => executionDatum(event, downloadTimeMetric) ?? []);
}

/** "1h02m", "3m03s", "12.5s": a fleet duration for people. */
export function formatDuration(ms: number): string {
	const seconds = ms / 1000;
	if (seconds < 60) return `${Number(seconds.toFixed(1))}s`;
	const minutes = Math.floor(seconds / 60);
	if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
	return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

function round3(value: number): number {
	return Math.round(value * 1000) / 1000;
}

function seconds(ms: number | undefined): number | undefined {
	return ms === undefined ? undefined : round3(ms / 1000);
}

function downloadSeconds(execution: Execution<BoardDetail>): number | undefined {
	if ((execution.status !== "SUCCEEDED" && execution.status !== "FAILED") || execution.startedAtMs === undefined) return undefined;
	return round3((execution.endedAtMs! - execution.startedAtMs) / 1000);
}

function roundReport(round: RoundRun): RoundReport {
	const { rollout } = round;
	const counts = statusCounts(rollout.executions, rollout.notNotified.length, Infinity);
	const details = rollout.executions.flatMap((execution) => (execution.detail ? [execution.detail] : []));
	const sum = (pick: (detail: BoardDetail) => number) => details.reduce((total, detail) => total + pick(detail), 0);
	const times = rollout.executions.flatMap((execution) => downloadSeconds(execution) ?? []);
	const abort = rollout.abort;
	const pending = counts.QUEUED + counts.IN_PROGRESS;
	const outcome = abort ? "aborted" : round.failed ? "failed" : "succeeded";
	return {
		round: round.round,
		jobId: round.jobId,
		outcome,
		why: explain(round, counts),
		jobStatus: abort ? "CANCELED" : pending || rollout.notNotified.length ? "IN_PROGRESS" : "COMPLETED",
		startSeconds: seconds(round.startMs)!,
		durationSeconds: seconds(rollout.endMs)!,
		counts,
		abort: abort && {
			atSeconds: seconds(abort.atMs)!,
			failureType: abort.criterion.failureType,
			thresholdPercentage: abort.criterion.thresholdPercentage,
			minNumberOfExecutedThings: abort.criterion.minNumberOfExecutedThings,
			completed: abort.completed,
			failures: abort.failures,
			percentage: round3(abort.percentage),
		},
		downloadSeconds: times.length ? { samples: times.length, p50: statistic(times, "p50"), p90: statistic(times, "p90"), p99: statistic(times, "p99") } : undefined,
		retries: sum((detail) => detail.retries),
		refetchedBytes: sum((detail) => detail.refetchedBytes),
		powerCuts: sum((detail) => detail.cuts),
		batches: rollout.batches.map((batch) => ({ minute: batch.atMs / 60_000, ratePerMinute: batch.ratePerMinute, notified: batch.notified })),
		timeline: timeline(rollout.executions, rollout.notNotified.length, rollout.endMs),
		executions: rollout.executions.map(executionReport),
	};
}

function explain(round: RoundRun, counts: StatusCounts): string {
	const { rollout } = round;
	const { abort } = rollout;
	const never = rollout.notNotified.length ? `; ${rollout.notNotified.length} things were never notified` : "";
	if (abort) {
		const { criterion } = abort;
		return `job ${round.jobId} canceled at ${formatDuration(abort.atMs)}: abort rule ${criterion.failureType} ≥ ${criterion.thresholdPercentage}% `
			+ `after at least ${criterion.minNumberOfExecutedThings} completed executions was met by ${abort.failures} ${criterion.failureType === "ALL" ? "failed, rejected or timed out" : criterion.failureType}`
			+ ` of ${abort.completed} completed (${abort.percentage.toFixed(1)}%)${never}`;
	}
	if (!round.failed) return `all ${counts.SUCCEEDED} executions SUCCEEDED in ${formatDuration(rollout.endMs)}`;
	const unsuccessful = executionStatuses.filter((status) => status !== "SUCCEEDED" && counts[status]).map((status) => `${counts[status]} ${status}`);
	return `not every execution succeeded: ${unsuccessful.join(", ")}${never}`;
}

/** How many executions were in each status at `atMs` (Infinity: at the end). */
function statusCounts(executions: Execution<BoardDetail>[], notNotified: number, atMs: number): StatusCounts {
	const counts = Object.fromEntries([...executionStatuses, "NOT_NOTIFIED"].map((status) => [status, 0])) as StatusCounts;
	counts.NOT_NOTIFIED = notNotified;
	for (const execution of executions) {
		if (atMs < execution.notifiedAtMs) counts.NOT_NOTIFIED++;
		else if (execution.endedAtMs !== undefined && atMs >= execution.endedAtMs) counts[execution.status]++;
		else if (execution.startedAtMs !== undefined && atMs >= execution.startedAtMs) counts.IN_PROGRESS++;
		else counts.QUEUED++;
	}
	return counts;
}

/** The counts at every moment they change, or at evenly spaced moments when there are too many. */
function timeline(executions: Execution<BoardDetail>[], notNotified: number, endMs: number): RoundReport["timeline"] {
	let moments = [...new Set([0, endMs, ...executions.flatMap((execution) => [execution.notifiedAtMs, execution.startedAtMs ?? 0, execution.endedAtMs ?? 0])])].sort((a, b) => a - b);
	if (moments.length > maxTimelinePoints) moments = Array.from({ length: maxTimelinePoints }, (_, index) => (endMs * index) / (maxTimelinePoints - 1));
	return moments.map((atMs) => ({ atSeconds: seconds(atMs)!, counts: statusCounts(executions, notNotified, atMs) }));
}

function executionReport(execution: Execution<BoardDetail>): ExecutionReport {
	const detail = execution.detail;
	const faults = detail?.faults;
	return {
		thing: execution.thing,
		status: execution.status,
		notifiedAtSeconds: seconds(execution.notifiedAtMs)!,
		startedAtSeconds: seconds(execution.startedAtMs),
		endedAtSeconds: seconds(execution.endedAtMs),
		downloadSeconds: downloadSeconds(execution),
		lateStatus: execution.lateStatus,
		result: detail?.result,
		reason: detail?.reason,
		statusDetails: detail?.statusDetails ?? {},
		firmware: detail?.firmware,
		retries: detail?.retries ?? 0,
		refetchedBytes: detail?.refetchedBytes ?? 0,
		cuts: detail?.cuts ?? 0,
		powerOns: detail?.powerOns ?? 0,
		boots: detail?.boots ?? 0,
		deviceSeconds: seconds(detail?.deviceMs ?? 0)!,
		offSeconds: seconds(detail?.downtimeMs ?? 0)!,
		linkSeconds: seconds(detail?.linkMs ?? 0)!,
		mqttBytes: detail?.mqttBytes ?? 0,
		linkKbps: faults?.linkKbps ?? 0,
		faults: faults ? [
			...(faults.offline ? ["offline"] : faults.dead ? ["dead"] : faults.cuts ? [`${faults.cuts} cut${faults.cuts > 1 ? "s" : ""}`] : []),
			...(faults.failSelfTest ? ["self-test fails"] : []),
		] : [],
		error: detail?.error,
	};
}
