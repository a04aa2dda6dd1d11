/*
	A simulated fleet: the AWS IoT Jobs and streams emulator, one simulated board (Node engine) per thing, each
	in its own folder, and the rollout controller of rollout.ts deploying one job to them, round after round.

	Boards run on demand: when its thing is notified, the runner creates the thing's execution on the emulator,
	powers the board on (runDevice) and runs it until it is idle; between runs a board is nothing but its
	folder (about 4 MB of flash files), so the fleet's size costs disk, not memory. At most `concurrency`
	boards run at once, spread over worker threads (board-threads.ts), one per core by default. Boards settle
	with the emulator (host-sim/board/mqtt-network.ts): a reply on its way costs a board no virtual time, so
	what a board does and how long it takes on its own clock do not depend on the host's speed or load.

	A board's duration in virtual time is what its own virtual clock moved (runDevice's wallTime − startTime),
	plus the downtime after each power cut, plus its link's transfer time (the MQTT bytes it received at its
	link speed); its terminal status is placed at the end of the run that reported it (a board goes idle once
	it has settled with no timer armed). The in-progress timer is enforced on the board's own clock: a
	board still at work when it runs out (runDevice's runFor), or still off after a cut when it does, has its
	execution ended TIMED_OUT on the emulator, as the service would.

	Faults (faults.ts): power cuts at a random persistent write of the download, a board that never comes back
	after its cut, a board that is off for the whole rollout, message loss on everything the service
	publishes, slow links, and boards whose new image fails its self-test (config.failSelfTest: the agent
	rolls back and the job ends FAILED).
*/

import { availableParallelism } from "node:os";
import * as path from "node:path";
import { BoardThreads } from "./board-threads";
import { seeded } from "../random";
import { startAwsIot, type AwsIot } from "../server/aws-iot";
import { terminalStatuses, type JobExecution } from "../server/aws-jobs";
import { maxRequestBytes } from "../server/aws-streams";
import { deploymentJobDocument, roundJobId, type Package } from "../../tools/fleet/aws-documents";
import type { DeploymentConfig } from "../../tools/fleet/deployment-config";
import { assignFaults, type BoardFaults, type FaultProfile } from "./faults";
import { runRollout, type BoardReport, type RolloutProgress, type RolloutResult, type TerminalStatus } from "./rollout";

export interface FleetOptions {
	config: DeploymentConfig;
	things: string[];
	pkg: Package;
	/** For a signed afr_ota package: the key the boards check the signature with (config.publicKey). */
	publicKey: string | undefined;
	faults: FaultProfile;
	boardsDir: string;
	concurrency: number;
	/** Worker threads the boards run on (default: one per core, at most `concurrency`). */
	threads?: number;
	onProgress?: (progress: FleetProgress) => void;
	/** Every board event, when the configuration asks for debug output. */
	log?: (line: string) => void;
}

export interface FleetProgress extends RolloutProgress {
	round: number;
	rounds: number;
	jobId: string;
	/** The executions the emulator holds for the round's job so far (computed when called). */
	executions(): { thing: string; status: string; statusDetails: { [key: string]: string } }[];
}

/** What one board's runs for one execution came to. */
export interface BoardDetail {
	faults: BoardFaults;
	/** Power-ons (runDevice calls: a cut ends one) and boots within them. */
	powerOns: number;
	boots: number;
	cuts: number;
	/** Virtual time on the board's own clock, off after cuts, and on its link. */
	deviceMs: number;
	downtimeMs: number;
	linkMs: number;
	mqttBytes: number;
	blocksFetched: number;
	/** Stream requests beyond the fewest a clean download needs. */
	retries: number;
	/** Stream block bytes received beyond the image's blocks. */
	refetchedBytes: number;
	/** The Update Result and reason the device put in statusDetails, and all it put there last. */
	result: string | undefined;
	reason: string | undefined;
	statusDetails: { [key: string]: string };
	/** The firmware running when the board last stopped. */
	firmware: string | undefined;
	error: string | undefined;
}

export interface RoundRun {
	round: number;
	jobId: string;
	/** Fleet time at which the round's job was created. */
	startMs: number;
	rollout: RolloutResult<BoardDetail>;
	failed: boolean;
}

export interface FleetRun {
	rounds: RoundRun[];
	/** The job document every round deployed. */
	document: Record<string, unknown>;
	/** The wall-clock time (ms since 1970) fleet time 0 stands for: the boards' clocks and the metric's timestamps. */
	epochMs: number;
}

/** The stream block size the boards use (their config.blockSize). */
const blockSize = 4096;
/** Short retries, as the suites use: a lost message costs a board this much real time while it is connected. */
const boardTimings = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
/** How long a board may run without a job timeout: AWS's longest in-progress timer, 7 days. */
const longestRunMs = 10080 * 60_000;
/**
	A run ends once the board has settled with no timer armed; with message loss, a reply the device waits for
	without a timer (its $next/get) may never come: a board idle while its job is still pending is powered on
	again (a real one would have stayed connected), at most this many times.
*/
const maxQuietRestarts = 3;

export async function simulateFleet(options: FleetOptions): Promise<FleetRun> {
	const { config, things, pkg, faults } = options;
	const document = deploymentJobDocument(config, pkg);
	const boardFaults = assignFaults(things.length, faults);
	const imageBlocks = Math.ceil(pkg.bytes.length / blockSize);
	const cleanRequests = Math.ceil(imageBlocks / Math.floor(maxRequestBytes / blockSize));
	const slot = limiter(options.concurrency);
	// Whole minutes, so that the alarms' periods start with the deployment.
	const epoch = Math.floor(Date.now() / 60_000) * 60_000;
	const aws = await startAwsIot({ faults: { dropRate: faults.messageLoss, seed: faults.seed } });
	const threads = new BoardThreads(options.threads ?? Math.min(options.concurrency, availableParallelism()));
	const rounds: RoundRun[] = [];
	try {
		aws.streams.put(config.streamId, new Map([[pkg.fileId, pkg.bytes]]), `firmware ${pkg.version}`);
		let startMs = 0;
		for (let round = 1; round <= config.rounds; round++) {
			const jobId = roundJobId(config, round);
			const runBoard = async (thing: string, notifiedAtMs: number, timeoutMs: number | undefined): Promise<BoardReport<BoardDetail>> => {
				aws.jobs.create(thing, jobId, document);
				const index = things.indexOf(thing);
				const detail = emptyDetail(boardFaults[index]);
				if (detail.faults.offline) return { detail };
				const requestsBefore = aws.streams.requestsByThing.get(thing) ?? 0;
				const run: BoardRun = {
					aws, threads, jobId, thing, detail, dir: path.join(options.boardsDir, thing), startMs: epoch + startMs + notifiedAtMs, timeoutMs,
					downtimeMs: faults.downtimeMinutes * 60_000, cutRange: 2 * imageBlocks, random: seeded(faults.seed * 1_000_003 + index * 101 + round),
					config: {
						...boardTimings, blockSize, ...(config.rounds > 1 ? { allowDowngrade: true } : {}),
						...(detail.faults.failSelfTest ? { failSelfTest: true } : {}), ...(options.publicKey ? { publicKey: options.publicKey } : {}),
					},
					log: options.log,
				};
				let times: { afterMs: number; startedAfterMs: number | undefined };
				try {
					times = await slot(() => driveBoard(run));
				}
				catch (error) {
					detail.error = (error as Error).message;
					times = { afterMs: detail.deviceMs + detail.downtimeMs, startedAfterMs: undefined };
				}
				const held = jobExecution(aws, thing, jobId);
				const requests = (aws.streams.requestsByThing.get(thing) ?? 0) - requestsBefore;
				detail.retries = Math.max(0, requests - cleanRequests);
				detail.refetchedBytes = Math.max(0, detail.blocksFetched - imageBlocks) * blockSize;
				detail.result = held.statusDetails.result;
				detail.reason = held.statusDetails.reason;
				detail.statusDetails = { ...held.statusDetails };
				const status = terminalStatuses.has(held.status) ? held.status as TerminalStatus : undefined;
				const afterMs = status === "TIMED_OUT" ? times.startedAfterMs! + timeoutMs! : times.afterMs;
				return { startedAfterMs: times.startedAfterMs, status, afterMs, detail };
			};
			// What a monitor was last shown of each thing: the cleanup deletes the job from the emulator at the round's end.
			const known = new Map<string, { thing: string; status: string; statusDetails: { [key: string]: string } }>();
			const executions = () => {
				for (const thing of things)
					for (const each of aws.executions(thing))
						if (each.jobId === jobId) known.set(thing, { thing, status: each.status, statusDetails: { ...each.statusDetails } });
				return [...known.values()];
			};
			const rollout = await runRollout(things, config, runBoard, {
				progress: (state) => options.onProgress?.({ ...state, round, rounds: config.rounds, jobId, executions }),
				canceled: (queued) => {
					for (const thing of queued) if (!terminalStatuses.has(jobExecution(aws, thing, jobId).status)) aws.endJob(thing, jobId, "CANCELED");
				},
			});
			const failed = rollout.abort !== undefined || rollout.notNotified.length > 0 || rollout.executions.some((each) => each.status !== "SUCCEEDED");
			rounds.push({ round, jobId, startMs, rollout, failed });
			executions(); // the round's last look, before the cleanup deletes its job
			if (config.cleanUp) aws.jobs.delete(jobId);
			if (failed) break;
			startMs += rollout.endMs + config.defaultDelaySeconds * 1000;
		}
		if (config.cleanUp) aws.streams.streams.delete(config.streamId);
	}
	finally {
		await threads.close();
		await aws.close();
	}
	return { rounds, document, epochMs: epoch };
}

function jobExecution(aws: AwsIot, thing: string, jobId: string): JobExecution {
	return aws.executions(thing).find((each) => each.jobId === jobId)!;
}

interface BoardRun {
	aws: AwsIot;
	threads: BoardThreads;
	jobId: string;
	thing: string;
	dir: string;
	detail: BoardDetail;
	/** Virtual wall-clock time at which the thing was notified. */
	startMs: number;
	timeoutMs: number | undefined;
	downtimeMs: number;
	/** Cuts land on one of this many first persistent writes (the download's). */
	cutRange: number;
	random: () => number;
	config: Record<string, unknown>;
	log: ((line: string) => void) | undefined;
}

/**
	Runs a board until its execution has ended, or it is idle, dead or out of time. Returns, in virtual ms since the
	notification, when it ended (plus the link's transfer time) and when the board took the job: at the start of
	the power-on in which the service accepted its IN_PROGRESS (a board takes its job as soon as it is connected).
*/
async function driveBoard(run: BoardRun): Promise<{ afterMs: number; startedAfterMs: number | undefined }> {
	const { aws, jobId, thing, detail, timeoutMs } = run;
	const execution = () => jobExecution(aws, thing, jobId);
	const started = () => execution().status === "IN_PROGRESS" || execution().updates.some((update) => update.outcome === "accepted" && update.status === "IN_PROGRESS");
	// The service's in-progress timer, when the job has one, runs out (it runs only while the execution is IN_PROGRESS).
	const timeOut = () => {
		if (timeoutMs !== undefined && execution().status === "IN_PROGRESS") aws.endJob(thing, jobId, "TIMED_OUT");
	};
	let elapsed = 0, startedAfterMs: number | undefined, quietRestarts = 0;
	for (;;) {
		const startTime = run.startMs + elapsed;
		// Until the job is taken its timer has not started: a whole timeout from now is the most it can have.
		const deadline = timeoutMs === undefined ? longestRunMs : (startedAfterMs ?? elapsed) + timeoutMs;
		const outcome = await run.threads.run({
			dir: run.dir, engine: "node", mqtt: aws.url, settle: true, thing, config: run.config, startTime, runFor: deadline - elapsed,
			cutAfterOps: detail.cuts < detail.faults.cuts ? 1 + Math.floor(run.random() * run.cutRange) : undefined,
		}, run.log && ((event) => run.log!(`${jobId} ${thing} ${JSON.stringify(event)}`)));
		detail.powerOns++;
		detail.boots += outcome.boots;
		detail.deviceMs += outcome.wallTime - startTime;
		detail.mqttBytes += outcome.mqttBytesReceived;
		detail.blocksFetched += outcome.blocksFetched;
		detail.firmware = outcome.running.version;
		if (startedAfterMs === undefined && started()) startedAfterMs = elapsed;
		elapsed += outcome.wallTime - startTime;
		if (terminalStatuses.has(execution().status)) break;
		if (outcome.end === "power-cut") {
			detail.cuts++;
			if (detail.faults.dead) {
				// It stays off: the service's timer will run out.
				timeOut();
				break;
			}
			detail.downtimeMs += run.downtimeMs;
			elapsed += run.downtimeMs;
			if (startedAfterMs !== undefined && timeoutMs !== undefined && elapsed >= startedAfterMs + timeoutMs) {
				timeOut();
				break;
			}
			continue;
		}
		if (outcome.end === "time-up") timeOut();
		else if (quietRestarts++ < maxQuietRestarts) continue;
		break;
	}
	detail.linkMs = Math.round((detail.mqttBytes * 8) / detail.faults.linkKbps);
	return { afterMs: elapsed + detail.linkMs, startedAfterMs };
}

function emptyDetail(faults: BoardFaults): BoardDetail {
	return {
		faults, powerOns: 0, boots: 0, cuts: 0, deviceMs: 0, downtimeMs: 0, linkMs: 0, mqttBytes: 0, blocksFetched: 0, retries: 0,
		refetchedBytes: 0, result: undefined, reason: undefined, statusDetails: {}, firmware: undefined, error: undefined,
	};
}

/** Runs at most `count` pieces of work at once, the rest in the order they asked. */
function limiter(count: number): <T>(work: () => Promise<T>) => Promise<T> {
	let active = 0;
	const waiting: (() => void)[] = [];
	return async (work) => {
		if (active < count) active++;
		else await new Promise<void>((go) => waiting.push(go));
		try {
			return await work();
		}
		finally {
			const next = waiting.shift();
			if (next) next();
			else active--;
		}
	};
}
