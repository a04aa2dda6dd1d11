/*
	xs-ota fleet: one update deployed to many boards, from the seed's deployment configuration.
	  xs-ota fleet --config FILE --target sim|aws …   rehearse it on simulated boards, or write the AWS documents
	  xs-ota fleet monitor --config FILE [--target aws|sim] …   follow its jobs (monitor.ts)
	The thing list and the image default to the configuration's thingList and binName (relative to its folder).
	sim: runs the rollout on simulated boards, shows a progress line, keeps OUT/monitor.json current for a
	monitor, writes report.json and report.html in the output folder (default xs-ota-fleet), and exits 3
	when a round failed.
	aws: writes the AWS CLI documents and deploy.sh in the output folder, whole or not at all (a temporary
	folder renamed into place); sends nothing anywhere.
*/

import * as fs from "node:fs";
import * as path from "node:path";
import { awsDeployment, checkIds, packageVersion, readCustomDocument, signImage, type Package } from "./aws-documents";
import { readDeploymentConfig, type DeploymentConfig } from "./deployment-config";
import { AwsCliSource, monitor, RehearsalSource, writeMonitorState, type JobView } from "./monitor";
import { numberedThings, parseThingList, simulatedThings, type Target } from "./things";
import { defaultFaults, type FaultProfile } from "../../host-sim/fleet/faults";
import type { FleetProgress } from "../../host-sim/fleet/fleet-sim";
import { buildReport, formatDuration } from "../../host-sim/fleet/report";
import { reportHtml } from "../../host-sim/fleet/report-html";
import { executionStatuses } from "../../host-sim/fleet/rollout";
import { UsageError, type CommandSpec, type Flags } from "../../host-sim/flags";

export type FleetFlags = Flags;

/** Exit code of a simulated deployment in which a round failed. */
export const failedRolloutExitCode = 3;

/** Fault profile flags, the profile field each sets, and its range. */
const faultFlags: { [flag: string]: { field: keyof FaultProfile; min: number; max: number; integer?: boolean; help: string } } = {
	"cut-share": { field: "cutShare", min: 0, max: 1, help: "share of boards whose power is cut during the download" },
	cuts: { field: "cutsPerBoard", min: 1, max: 100, integer: true, help: "cuts per such board (default 1)" },
	downtime: { field: "downtimeMinutes", min: 0, max: 10080, help: "minutes a board stays off after a cut (default 1)" },
	"dead-share": { field: "deadShare", min: 0, max: 1, help: "share of boards cut once and never back" },
	"offline-share": { field: "offlineShare", min: 0, max: 1, help: "share of boards off for the whole rollout" },
	loss: { field: "messageLoss", min: 0, max: 0.5, help: "share of the service's messages lost" },
	"link-kbps": { field: "linkKbps", min: 1, max: 1e6, help: "every board's link speed (default 1000)" },
	"slow-share": { field: "slowShare", min: 0, max: 1, help: "share of boards on a slow link" },
	"slow-kbps": { field: "slowLinkKbps", min: 1, max: 1e6, help: "the slow link's speed (default 50)" },
	"self-test-fail": { field: "selfTestFailShare", min: 0, max: 1, help: "share of boards whose new image fails its self-test" },
	seed: { field: "seed", min: 0, max: 2 ** 31, integer: true, help: "which boards, cut points and lost messages" },
};

const commonFlags = [
	{ name: "config", value: "FILE", help: "the deployment configuration (the seed's dev.ini); required" },
	{ name: "target", value: "sim|aws", help: "rehearse on simulated boards, or write the AWS documents; required" },
	{ name: "things", value: "FILE", help: "the thing list (default: DEFAULT.thingList)" },
	{ name: "image", value: "FILE", help: "the firmware image, an esp32 app image (default: DEFAULT.binName)" },
	{ name: "out", value: "DIR", help: "where the report or the documents go (default xs-ota-fleet)" },
	{ name: "form", value: "fota|afr_ota", help: "the job document's form (default fota)" },
	{ name: "signing-key", value: "PEM", help: "afr_ota: sign the image with this EC P-256 key" },
	{ name: "file-id", value: "N", help: "the stream's file id, 0 to 255 (default 0)" },
];
const simOnly = ["boards", "concurrency", "keep-boards", ...Object.keys(faultFlags)];

export const fleetSpec: CommandSpec = {
	usage: "xs-ota fleet",
	summary: "Rehearses a rollout on simulated boards (--target sim), or writes the AWS documents and deploy.sh for it (--target aws).\n`xs-ota fleet monitor --help` for following one. Exit: 0 done, 1 bad configuration or files, 2 bad flags, 3 a rehearsed round failed.",
	flags: [
		...commonFlags,
		{ name: "boards", value: "N", help: "sim: N generated things instead of a thing list" },
		{ name: "concurrency", value: "N", help: "sim: boards run at once (default 8)" },
		{ name: "keep-boards", help: "sim: keep the board folders in DIR/boards" },
		...Object.entries(faultFlags).map(([name, flag]) => ({ name, value: flag.integer ? "N" : "X", help: `sim: ${flag.help}` })),
	],
};

export const monitorSpec: CommandSpec = {
	usage: "xs-ota fleet monitor",
	summary: "Follows a deployment's jobs until they end: executions by status, rollout rate, abort, each thing's status details.\nExit: 0 every job completed with all executions succeeded, 1 cannot follow, 2 bad flags, 3 a job did not succeed, 4 still running.",
	flags: [
		{ name: "config", value: "FILE", help: "the deployment configuration: its jobs, region and rounds; required" },
		{ name: "target", value: "aws|sim", help: "aws: through the AWS CLI (default); sim: a running rehearsal" },
		{ name: "out", value: "DIR", help: "sim: the rehearsal's --out folder (default xs-ota-fleet)" },
		{ name: "interval", value: "SECONDS", help: "between two looks (default 10)" },
		{ name: "once", help: "look once, print the report and exit" },
	],
};

function value(flags: FleetFlags, name: string): string | undefined {
	const given = flags[name];
	if (given === true) throw new UsageError(`--${name} needs a value`);
	return given;
}

function numberFlag(flags: FleetFlags, name: string, min: number, max: number, integer = false): number | undefined {
	const text = value(flags, name);
	if (text === undefined) return undefined;
	const number = Number(text);
	if (!/^\d+(\.\d+)?$/.test(text) || number < min || number > max || (integer && !Number.isInteger(number)))
		throw new UsageError(`--${name} takes ${integer ? "a whole number" : "a number"} from ${min} to ${max}`);
	return number;
}

export async function fleetCommand(flags: FleetFlags): Promise<void> {
	const target = value(flags, "target");
	if (target !== "sim" && target !== "aws") throw new UsageError("--target is sim or aws");
	const misplaced = target === "aws" ? Object.keys(flags).find((name) => simOnly.includes(name)) : undefined;
	if (misplaced) throw new UsageError(`--${misplaced} is not a flag of xs-ota fleet --target aws (it is for sim)`);
	const configFile = value(flags, "config");
	if (!configFile) throw new UsageError("--config names the deployment configuration (the seed's dev.ini)");
	const config = readDeploymentConfig(configFile);
	checkIds(config);
	const out = path.resolve(value(flags, "out") ?? "xs-ota-fleet");
	const pkg = readPackage(flags, config);
	if (target === "aws") return writeAwsDocuments(config, readTargets(flags, config), pkg, out);
	const boards = numberFlag(flags, "boards", 1, 100_000, true);
	const things = boards === undefined ? simulatedThings(readTargets(flags, config), thingListName(flags, config)) : numberedThings(boards);
	await simulate(flags, config, things, pkg, out);
}

function readPackage(flags: FleetFlags, config: DeploymentConfig): Package & { path: string; publicKey: string | undefined } {
	const given = value(flags, "image");
	if (!given && !config.binName) throw new Error(`${config.where("DEFAULT.binName")}: missing, and no --image`);
	const file = given ? path.resolve(given) : path.resolve(config.dir, config.binName!);
	if (!fs.existsSync(file)) throw new Error(given ? `--image: no file ${file}` : `${config.where("DEFAULT.binName")}: no file ${file}`);
	const bytes = new Uint8Array(fs.readFileSync(file));
	const form = value(flags, "form") ?? "fota";
	if (form !== "fota" && form !== "afr_ota") throw new UsageError("--form is fota or afr_ota");
	const keyFile = value(flags, "signing-key");
	if (keyFile && form !== "afr_ota") throw new UsageError("--signing-key needs --form afr_ota (a fota document carries an md5sum, not a signature)");
	const signing = keyFile ? signImage(bytes, fs.readFileSync(keyFile, "utf8")) : undefined;
	return {
		bytes, path: file, fileName: path.basename(file), version: packageVersion(bytes, file), form, fileId: numberFlag(flags, "file-id", 0, 255, true) ?? 0,
		signature: signing?.signature, publicKey: signing?.publicKey, custom: readCustomDocument(config),
	};
}

function thingListName(flags: FleetFlags, config: DeploymentConfig): string {
	const given = value(flags, "things");
	if (given) return path.resolve(given);
	if (!config.thingList) throw new Error(`${config.where("DEFAULT.thingList")}: missing, and neither --things nor --boards`);
	return path.resolve(config.dir, config.thingList);
}

function readTargets(flags: FleetFlags, config: DeploymentConfig): Target[] {
	const file = thingListName(flags, config);
	if (!fs.existsSync(file)) throw new Error(flags.things ? `--things: no file ${file}` : `${config.where("DEFAULT.thingList")}: no file ${file}`);
	return parseThingList(fs.readFileSync(file, "utf8"), file);
}

function writeAwsDocuments(config: DeploymentConfig, targets: Target[], pkg: Package & { path: string }, out: string): void {
	const { files } = awsDeployment(config, targets, pkg, pkg.path);
	writeFolder(out, files);
	console.log(`wrote ${[...files.keys()].join(", ")} in ${out}`);
	console.log(`nothing was sent: review them, then run ${path.join(out, "deploy.sh")} from ${out}`);
}

/** Writes the files as the folder `out`, whole or not at all: into a new folder beside it, then renamed over it. */
export function writeFolder(out: string, files: Map<string, string>): void {
	if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new Error(`--out: ${out} is not a folder`);
	fs.mkdirSync(path.dirname(out), { recursive: true });
	const fresh = fs.mkdtempSync(`${out}.new-`);
	try {
		for (const [name, content] of files) fs.writeFileSync(path.join(fresh, name), content, { mode: name.endsWith(".sh") ? 0o755 : 0o644 });
		fs.chmodSync(fresh, 0o755);
		if (!fs.existsSync(out)) return fs.renameSync(fresh, out);
		const old = `${fresh}.old`;
		fs.renameSync(out, old);
		fs.renameSync(fresh, out);
		fs.rmSync(old, { recursive: true, force: true });
	}
	finally {
		fs.rmSync(fresh, { recursive: true, force: true });
	}
}

/** xs-ota fleet monitor. */
export async function monitorCommand(flags: FleetFlags): Promise<void> {
	const configFile = value(flags, "config");
	if (!configFile) throw new UsageError("--config names the deployment configuration (the seed's dev.ini)");
	const target = value(flags, "target") ?? "aws";
	if (target !== "sim" && target !== "aws") throw new UsageError("--target is aws or sim");
	const config = readDeploymentConfig(configFile);
	checkIds(config);
	if (target === "aws" && !config.region) throw new Error(`${config.where("DEFAULT.region")}: missing, and the monitor needs it`);
	if (target === "aws" && value(flags, "out")) throw new UsageError("--out is for --target sim (the rehearsal's folder)");
	const source = target === "aws" ? new AwsCliSource(config.region!) : new RehearsalSource(path.join(path.resolve(value(flags, "out") ?? "xs-ota-fleet"), "monitor.json"));
	const interval = numberFlag(flags, "interval", 0.05, 3600) ?? 10;
	const { exitCode } = await monitor({ config, source, intervalMs: interval * 1000, once: flags.once === true, out: process.stdout });
	process.exitCode = exitCode;
}

async function simulate(flags: FleetFlags, config: DeploymentConfig, things: string[], pkg: Package & { publicKey: string | undefined }, out: string): Promise<void> {
	const faults = { ...defaultFaults };
	for (const [flag, { field, min, max, integer }] of Object.entries(faultFlags)) {
		const given = numberFlag(flags, flag, min, max, integer);
		if (given !== undefined) faults[field] = given;
	}
	const concurrency = numberFlag(flags, "concurrency", 1, 256, true) ?? 8;
	const boardsDir = path.join(out, "boards");
	fs.rmSync(boardsDir, { recursive: true, force: true });
	fs.mkdirSync(boardsDir, { recursive: true });
	const logFile = config.debug ? fs.openSync(path.join(out, "fleet.log"), "w") : undefined;
	const started = performance.now();
	const line = progressLine(started);
	const live = liveState(path.join(out, "monitor.json"));
	const progress = { update: (state: FleetProgress) => (line.update(state), live.update(state)), done: () => (line.done(), live.done()) };
	try {
		// The simulator (boards, engines, the broker) loads only for a rehearsal.
		const { simulateFleet } = await import("../../host-sim/fleet/fleet-sim");
		const run = await simulateFleet({
			config, things, pkg, publicKey: pkg.publicKey, faults, boardsDir, concurrency, onProgress: progress.update,
			log: logFile === undefined ? undefined : (line) => fs.writeSync(logFile, `${line}\n`),
		});
		progress.done();
		const report = buildReport(run, { config, pkg, boards: things.length, concurrency, faults, wallMs: performance.now() - started, peakRssBytes: process.resourceUsage().maxRSS * 1024 });
		const json = path.join(out, "report.json"), html = path.join(out, "report.html");
		fs.writeFileSync(json, `${JSON.stringify(report, null, "\t")}\n`);
		fs.writeFileSync(html, reportHtml(report));
		if (report.roundsRun > 1) for (const round of report.rounds) console.log(`round ${round.round}: ${round.outcome}: ${round.why}`);
		for (const alarm of report.alarms.filter((each) => each.firstAlarmSeconds !== undefined))
			console.log(`alarm ${alarm.rule.name} went to ALARM at ${formatDuration(alarm.firstAlarmSeconds! * 1000)} (${alarm.rule.stat} ${alarm.rule.metricName} ${alarm.rule.type === "upper" ? ">" : "<"} ${alarm.rule.threshold})`);
		console.log(report.outcome);
		console.log(`${things.length} boards, ${formatDuration(report.wall.virtualSeconds * 1000)} of virtual time in ${report.wall.seconds} s; report: ${json}, ${html}`);
		if (report.rounds.some((round) => round.outcome !== "succeeded")) process.exitCode = failedRolloutExitCode;
	}
	finally {
		progress.done();
		if (logFile !== undefined) fs.closeSync(logFile);
		if (flags["keep-boards"] !== true) fs.rmSync(boardsDir, { recursive: true, force: true });
	}
}

/** DIR/monitor.json, for xs-ota fleet monitor --target sim: rewritten at most once a second, and at the end. */
function liveState(file: string): { update: (progress: FleetProgress) => void; done: () => void } {
	const jobs: JobView[] = [];
	let last = 0, latest: FleetProgress | undefined;
	const write = (finished: boolean) => {
		if (latest) {
			const progress = latest;
			const view: JobView = {
				jobId: progress.jobId,
				status: progress.abort ? "CANCELED" : progress.counts.QUEUED + progress.counts.IN_PROGRESS + progress.counts.NOT_NOTIFIED ? "IN_PROGRESS" : "COMPLETED",
				counts: Object.fromEntries(executionStatuses.map((status) => [status, progress.counts[status]])),
				ratePerMinute: progress.ratePerMinute,
				abort: progress.abort && `abort rule ${progress.abort.criterion.failureType} ≥ ${progress.abort.criterion.thresholdPercentage}%: ${progress.abort.failures} of ${progress.abort.completed} completed`,
				executions: progress.executions(),
			};
			jobs[progress.round - 1] = view;
		}
		writeMonitorState(file, { finished, jobs });
	};
	write(false);
	return {
		update(progress) {
			// A round that ended is written as it ended, before the next one's progress replaces it.
			if (latest && latest.round !== progress.round) write(false);
			latest = progress;
			const now = performance.now();
			if (now - last < 1000) return;
			last = now;
			write(false);
		},
		done() {
			write(true);
		},
	};
}

/** The live progress line on stderr: redrawn in place on a terminal, a line every few seconds otherwise. */
function progressLine(started: number): { update: (progress: FleetProgress) => void; done: () => void } {
	const terminal = process.stderr.isTTY === true;
	let last = 0, pending = "", round = 0, earlierRounds = 0, reported = 0;
	const show = (line: string) => process.stderr.write(terminal ? `\r\x1b[K${line}` : `${line}\n`);
	return {
		update(progress) {
			if (progress.round !== round) {
				earlierRounds += reported;
				round = progress.round;
			}
			reported = progress.boardsReported;
			const seconds = (performance.now() - started) / 1000;
			const counts = executionStatuses.filter((status) => progress.counts[status]).map((status) => `${status} ${progress.counts[status]}`);
			pending = [
				`round ${progress.round}/${progress.rounds}`, formatDuration(progress.atMs), `rate ${progress.ratePerMinute}/min`, ...counts,
				`not notified ${progress.counts.NOT_NOTIFIED}`, `${progress.boardsRunning} running`,
				`${((earlierRounds + reported) / Math.max(seconds, 0.001)).toFixed(1)} boards/s`, `${seconds.toFixed(1)} s`,
			].join(" · ");
			const now = performance.now();
			if (now - last < (terminal ? 100 : 2000)) return;
			last = now;
			show(pending);
		},
		done() {
			if (!pending) return;
			show(pending);
			if (terminal) process.stderr.write("\n");
			pending = "";
		},
	};
}
