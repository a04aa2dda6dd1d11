/*
	xs-ota fleet: one update deployed to many boards, from the seed's deployment configuration.
	  --config FILE --target sim|aws  [--things FILE | --boards N] [--image FILE] [--out DIR]
	                                  [--form fota|afr_ota] [--signing-key PEM] [--file-id N]
	  --target sim only:              [--concurrency N] [--keep-boards] [--seed N] [--cut-share S] [--cuts N]
	                                  [--downtime MINUTES] [--dead-share S] [--offline-share S] [--loss P]
	                                  [--link-kbps K] [--slow-share S] [--slow-kbps K] [--self-test-fail S]
	The thing list and the image default to the configuration's thingList and binName (relative to its folder).
	sim: runs the rollout on simulated boards, shows a progress line, writes report.json and report.html in the
	output folder (default xs-ota-fleet), and exits 3 when a round failed.
	aws: writes the AWS CLI documents and deploy.sh in the output folder; sends nothing anywhere.
*/

import * as fs from "node:fs";
import * as path from "node:path";
import { awsDeployment, checkIds, packageVersion, readCustomDocument, signImage, type Package } from "./aws-documents";
import { readDeploymentConfig, type DeploymentConfig } from "./deployment-config";
import { defaultFaults, type FaultProfile } from "./faults";
import { simulateFleet, type FleetProgress } from "./fleet-sim";
import { buildReport, formatDuration } from "./report";
import { reportHtml } from "./report-html";
import { executionStatuses } from "./rollout";
import { numberedThings, parseThingList, simulatedThings, type Target } from "./things";

export type FleetFlags = { [name: string]: string | true };

/** Exit code of a simulated deployment in which a round failed. */
export const failedRolloutExitCode = 3;

const commonFlags = ["config", "target", "things", "image", "out", "form", "signing-key", "file-id"];
/** Fault profile flags, the profile field each sets, and its range. */
const faultFlags: { [flag: string]: { field: keyof FaultProfile; min: number; max: number; integer?: boolean } } = {
	"cut-share": { field: "cutShare", min: 0, max: 1 },
	cuts: { field: "cutsPerBoard", min: 1, max: 100, integer: true },
	downtime: { field: "downtimeMinutes", min: 0, max: 10080 },
	"dead-share": { field: "deadShare", min: 0, max: 1 },
	"offline-share": { field: "offlineShare", min: 0, max: 1 },
	loss: { field: "messageLoss", min: 0, max: 0.5 },
	"link-kbps": { field: "linkKbps", min: 1, max: 1e6 },
	"slow-share": { field: "slowShare", min: 0, max: 1 },
	"slow-kbps": { field: "slowLinkKbps", min: 1, max: 1e6 },
	"self-test-fail": { field: "selfTestFailShare", min: 0, max: 1 },
	seed: { field: "seed", min: 0, max: 2 ** 31, integer: true },
};
const simFlags = ["boards", "concurrency", "keep-boards", ...Object.keys(faultFlags)];

function value(flags: FleetFlags, name: string): string | undefined {
	const given = flags[name];
	if (given === true) throw new Error(`--${name} needs a value`);
	return given;
}

function numberFlag(flags: FleetFlags, name: string, min: number, max: number, integer = false): number | undefined {
	const text = value(flags, name);
	if (text === undefined) return undefined;
	const number = Number(text);
	if (!/^\d+(\.\d+)?$/.test(text) || number < min || number > max || (integer && !Number.isInteger(number)))
		throw new Error(`--${name} takes ${integer ? "a whole number" : "a number"} from ${min} to ${max}`);
	return number;
}

export async function fleetCommand(flags: FleetFlags): Promise<void> {
	const target = value(flags, "target");
	if (target !== "sim" && target !== "aws") throw new Error("--target is sim or aws");
	const known = new Set([...commonFlags, ...(target === "sim" ? simFlags : [])]);
	const unknown = Object.keys(flags).find((name) => !known.has(name));
	if (unknown) throw new Error(`--${unknown} is not a flag of xs-ota fleet --target ${target}`);
	const configFile = value(flags, "config");
	if (!configFile) throw new Error("--config names the deployment configuration (the seed's dev.ini)");
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
	if (!given && !config.binName) throw new Error(`${config.source}: DEFAULT.binName: missing, and no --image`);
	const file = given ? path.resolve(given) : path.resolve(config.dir, config.binName!);
	if (!fs.existsSync(file)) throw new Error(given ? `--image: no file ${file}` : `${config.source}: DEFAULT.binName: no file ${file}`);
	const bytes = new Uint8Array(fs.readFileSync(file));
	const form = value(flags, "form") ?? "fota";
	if (form !== "fota" && form !== "afr_ota") throw new Error("--form is fota or afr_ota");
	const keyFile = value(flags, "signing-key");
	if (keyFile && form !== "afr_ota") throw new Error("--signing-key needs --form afr_ota (a fota document carries an md5sum, not a signature)");
	const signing = keyFile ? signImage(bytes, fs.readFileSync(keyFile, "utf8")) : undefined;
	return {
		bytes, path: file, fileName: path.basename(file), version: packageVersion(bytes, file), form, fileId: numberFlag(flags, "file-id", 0, 255, true) ?? 0,
		signature: signing?.signature, publicKey: signing?.publicKey, custom: readCustomDocument(config),
	};
}

function thingListName(flags: FleetFlags, config: DeploymentConfig): string {
	const given = value(flags, "things");
	if (given) return path.resolve(given);
	if (!config.thingList) throw new Error(`${config.source}: DEFAULT.thingList: missing, and neither --things nor --boards`);
	return path.resolve(config.dir, config.thingList);
}

function readTargets(flags: FleetFlags, config: DeploymentConfig): Target[] {
	const file = thingListName(flags, config);
	if (!fs.existsSync(file)) throw new Error(flags.things ? `--things: no file ${file}` : `${config.source}: DEFAULT.thingList: no file ${file}`);
	return parseThingList(fs.readFileSync(file, "utf8"), file);
}

function writeAwsDocuments(config: DeploymentConfig, targets: Target[], pkg: Package & { path: string }, out: string): void {
	const { files } = awsDeployment(config, targets, pkg, pkg.path);
	fs.mkdirSync(out, { recursive: true });
	for (const [name, content] of files) fs.writeFileSync(path.join(out, name), content, { mode: name.endsWith(".sh") ? 0o755 : 0o644 });
	console.log(`wrote ${[...files.keys()].join(", ")} in ${out}`);
	console.log(`nothing was sent: review them, then run ${path.join(out, "deploy.sh")} from ${out}`);
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
	const progress = progressLine(started);
	try {
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
