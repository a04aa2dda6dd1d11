/*
	Power-cut torture, over an HTTP pull or an AWS IoT job with an MQTT stream (of an image, or of a patch from the
	factory image), or a coap:// pull of a patch: for one published image, cut the power at every persistent write of the whole update
	life cycle (download, checkpoints, verify, switch, first boot, self-test, confirm, report), power on again
	until idle, and check the invariants after each run. A sample of runs gets a second cut during the
	recovery from the first. The inactive slot starts full of an older image's bytes, as on a board that has
	updated before, so a missed erase, or a torn one (sector or 64 KiB block) left unrepaired, corrupts the image.

	Invariants:
	  bootable      every boot ran a valid image (the boot event names its version)
	  image         the final running image is byte-identical to the published one
	  boots         the update completes within maxBoots boots after the last cut
	  reported      the final result reached the server at least once, always the same result, and more than
	                once only when the cut fell after the acknowledgement and before the record's save (a pull);
	                exactly one terminal job status accepted by the jobs service (MQTT)
	  refetch       bytes fetched beyond the file's size ≤ one checkpoint interval plus the fragment in flight
	                per cut (the worst case is a cut that tears the checkpoint's own save: the bytes since the
	                previous checkpoint, and the rest of the fragment that crossed the boundary, come again);
	                for a patch, the interval is the most patch bytes between two of the applier's checkpoints.
	                A resume that starts at a block (CoAP Block2, MQTT stream) fetches whole blocks: at most the
	                blocks an interval can touch, ceil(interval / block) + 1, per cut
*/

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fillSlotWithNoise, prepareFactoryBoard, runDevice, type DeviceOptions, type DeviceOutcome, type DeviceReport, type EngineName } from "./device";
import { startAwsIot } from "./server/aws-iot";
import { seeded } from "./random";
import { makeAppImage, sha256Hex } from "./image";
import { factoryImage } from "./device";
import { SlotWriter } from "../src/agent/slot-writer";
import { SequentialApply } from "../src/delta/bsdiff-apply";
import { emptyHeader, maxHeaderBytes, readHeader } from "../src/delta/patch-header";
import { decompressorFor } from "../src/delta/patch-sink";
import { startUpdateServer } from "./server/http-server";
import { CoapFileServer } from "./server/coap-file-server";
import { preferredSzx } from "../src/transport/coap-pull";
import { defaultFragmentBytes } from "./board/network";

export type TortureTransport = "http" | "mqtt" | "http-patch" | "coap-patch" | "mqtt-patch";

export interface TortureOptions {
	engine: EngineName;
	transport?: TortureTransport;
	/** For the "-patch" transports: a patch from the factory image (factoryImage()) and the image it makes. */
	patch?: { bytes: Uint8Array; image: Uint8Array };
	/** Image size in bytes (K sectors of 4 KiB, plus a partial one to exercise the tail). */
	imageBytes: number;
	checkpointBytes: number;
	/** Try every stride-th cut point (1 = every persistent write). */
	stride: number;
	/** Every n-th cut point also gets a second cut during recovery (0 = none). */
	doubleCutEvery: number;
	maxBoots: number;
	seed: number;
	onRun?: (run: TortureRun) => void;
}

export interface TortureRun {
	cuts: number[];
	violations: string[];
	refetched: number;
	bootsToCompletion: number;
	resultReports: number;
}

export interface TortureSummary {
	engine: EngineName;
	transport: TortureTransport;
	/** What re-fetching is counted in: bytes over HTTP, blocks over an MQTT stream. */
	unit: "B" | "blocks";
	totalOps: number;
	cutPointsTried: number;
	doubleCuts: number;
	/** Cuts (first or second) that fell during a 64 KiB block erase, and during a sector erase. */
	blockEraseCuts: number;
	sectorEraseCuts: number;
	violations: string[];
	refetchPerCut: { mean: number; max: number };
	bootsToCompletion: { mean: number; max: number };
	duplicateReports: number;
	seconds: number;
}

/** How the update reaches a board, and how its costs and reports are counted. */
interface Delivery {
	transport: TortureTransport;
	/** What re-fetching is counted in: bytes over a pull, blocks over an MQTT stream. */
	unit: "B" | "blocks";
	/** The server is a jobs service, which accepts exactly one terminal status (not repeated reports). */
	jobs: boolean;
	/** What a fresh board needs to be told on its first power-on (`name` keeps boards apart). */
	begin(name: string): Partial<DeviceOptions>;
	/** What a later power-on needs, given the outcome of the one before. */
	again(name: string, previous: DeviceOutcome, before: Partial<DeviceOptions>): Partial<DeviceOptions>;
	/** What the run that ended in `outcome` fetched (called after every run but the uncut one, in order). */
	fetched(outcome: DeviceOutcome): number;
	/** Bytes (a pull) or blocks (MQTT) a whole download costs, and what one cut may add. */
	size: number;
	perCut: number;
	/** Final results the server holds for `name`: how many times, and how many different ones. */
	reports(name: string, events: DeviceReport[]): { count: number; distinct: number };
	/** Whether a second cut may be placed from a probe on a copy of the board (not with server-side jobs). */
	probes: boolean;
	close(): Promise<void>;
}

/** `file` (an image, or a patch whose checkpoints lie at most `interval` bytes apart) over an HTTP pull. */
async function httpDelivery(file: Uint8Array, interval: number, www: string, transport: TortureTransport): Promise<Delivery> {
	fs.writeFileSync(path.join(www, "app.bin"), file);
	const server = await startUpdateServer({ dir: www, port: 0 });
	// A resume asks for the bytes from the checkpoint on: the fragment that crossed the cut comes again too.
	return pullDelivery(`${server.url}/app.bin`, transport, file.length, interval + defaultFragmentBytes, (outcome) => outcome.bytesFetched, () => server.close());
}

/** `file` (a patch whose checkpoints lie at most `interval` bytes apart) over a coap:// pull, Block2 with ETag. */
async function coapDelivery(file: Uint8Array, interval: number, transport: TortureTransport): Promise<Delivery> {
	const server = await CoapFileServer.start();
	server.serve("/app.bin", file);
	// Counted where it is served (the board counts only HTTP bodies): what was served since the last count.
	let counted = 0;
	const fetched = () => {
		const served = server.stats.bytes - counted;
		counted = server.stats.bytes;
		return served;
	};
	// A resume asks for the block that holds the checkpoint.
	const blockBytes = 16 << preferredSzx;
	const delivery = pullDelivery(server.url("/app.bin"), transport, file.length, blocksTouched(interval, blockBytes) * blockBytes, fetched, () => server.close());
	return {
		...delivery,
		begin: (name) => {
			fetched(); // the uncut run's, or the last board's
			return delivery.begin(name);
		},
	};
}

/** A Package URI pull: the request is written again while unacknowledged, and every result report reaches the server. */
function pullDelivery(url: string, transport: TortureTransport, size: number, perCut: number, fetched: (outcome: DeviceOutcome) => number, close: () => Promise<void>): Delivery {
	return {
		transport, unit: "B", jobs: false, size, perCut, fetched, close,
		begin: () => ({ url }),
		// Like an LwM2M server whose write was never acknowledged, write the Package URI again.
		again: (_name, previous, before) => (before.url && !previous.requestAcknowledged ? { url } : {}),
		reports: (_name, events) => {
			const results = events.filter((event) => event.event === "result");
			return { count: results.length, distinct: new Set(results.map((event) => `${event.updateId}:${event.result}`)).size };
		},
		probes: true,
	};
}

/** `file` (an image, or a patch whose checkpoints lie at most `interval` bytes apart) as an AWS IoT job's MQTT stream. */
async function mqttDelivery(file: Uint8Array, interval: number, blockSize: number, transport: TortureTransport): Promise<Delivery> {
	const aws = await startAwsIot({});
	const jobs = new Map<string, string>();
	// A patch goes in an afr_ota document: a fota one's md5sum would be the patch's, not the image's it makes.
	const job = transport === "mqtt-patch" ? { image: file, form: "afr_ota" as const } : { image: file, form: "fota" as const, version: "7.7.7" };
	return {
		transport, unit: "blocks", jobs: true,
		begin: (name) => {
			jobs.set(name, aws.createJob(name, job).jobId);
			return { mqtt: aws.url, thing: name, settle: true };
		},
		// Settled with the emulator in this process: a loaded host's slow replies cost no virtual time, so they
		// cannot pass the 300 ms block timeout and show up as blocks fetched again.
		again: (name) => ({ mqtt: aws.url, thing: name, settle: true }),
		fetched: (outcome) => outcome.blocksFetched,
		size: Math.ceil(file.length / blockSize),
		// A resume asks from the block that holds the checkpoint.
		perCut: blocksTouched(interval, blockSize),
		reports: (name) => {
			const execution = aws.executions(name).find((e) => e.jobId === jobs.get(name));
			const terminal = (execution?.updates ?? []).filter((u) => u.outcome === "accepted" && ["SUCCEEDED", "FAILED", "REJECTED"].includes(String(u.status)));
			return { count: terminal.length, distinct: new Set(terminal.map((u) => String(u.status))).size };
		},
		probes: false,
		close: () => aws.close(),
	};
}

/** The most blocks of `blockBytes` that a run of `bytes` consecutive bytes can touch. */
function blocksTouched(bytes: number, blockBytes: number): number {
	return Math.ceil(bytes / blockBytes) + 1;
}

export async function torture(options: TortureOptions): Promise<TortureSummary> {
	const started = performance.now();
	const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-torture-"));
	const www = path.join(work, "www");
	fs.mkdirSync(www);
	const { transport = "http", patch, checkpointBytes } = options;
	if (transport.endsWith("-patch") !== (patch !== undefined)) throw new Error("a patch goes with the -patch transports, and only there");
	const image = patch ? patch.image : makeAppImage({ size: options.imageBytes, version: "7.7.7" });
	const published = sha256Hex(image);
	const file = patch ? patch.bytes : image;
	const interval = patch ? largestCheckpointGap(patch.bytes, factoryImage(), checkpointBytes) : checkpointBytes;
	// A patch streams in 1 KiB blocks, so the fixture's few KiB make several and a cut can fall between them.
	const blockSize = transport === "mqtt-patch" ? 1024 : 4096;
	const delivery = transport === "mqtt" || transport === "mqtt-patch" ? await mqttDelivery(file, interval, blockSize, transport)
		: transport === "coap-patch" ? await coapDelivery(file, interval, transport)
		: await httpDelivery(file, interval, www, transport);
	const config = { checkpointBytes, blockSize, backoffBaseMs: 100, blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
	const pristine = path.join(work, "pristine");
	prepareFactoryBoard(pristine);
	fillSlotWithNoise(pristine, 1, options.seed);
	const next = seeded(options.seed);
	const device = (dir: string, extra: Partial<DeviceOptions>) => runDevice({ dir, engine: options.engine, config, ...extra });
	try {
		const whole = await device(copyBoard(pristine, work, "whole"), delivery.begin("whole"));
		if (whole.result !== 1) throw new Error(`the uncut update failed with ${whole.result}`);
		const totalOps = whole.ops;
		const runs: TortureRun[] = [];
		let doubleCuts = 0;
		const cutKinds: string[] = [];
		for (let cut = 1; cut <= totalOps; cut += options.stride) {
			const name = `cut-${cut}`;
			const board = copyBoard(pristine, work, name);
			const events: DeviceReport[] = [];
			const onEvent = (event: DeviceReport) => {
				if (event.event === "result" || event.event === "boot") events.push(event);
				else if (event.event === "power-cut") cutKinds.push(String(event.kind));
			};
			const cuts = [cut];
			const begin = delivery.begin(name);
			const first = await device(board, { ...begin, cutAfterOps: cut, onEvent });
			let fetched = delivery.fetched(first);
			const violations: string[] = [];
			if (first.end !== "power-cut") violations.push(`cut ${cut} did not land`);
			let told = delivery.again(name, first, begin);
			if (options.doubleCutEvery && cut % options.doubleCutEvery === 0) {
				const probe = delivery.probes ? await device(copyBoard(board, work, `probe-${cut}`), told) : undefined;
				if (probe) delivery.fetched(probe); // not this board's
				const left = probe ? probe.ops : 40;
				if (left > 0) {
					const second = 1 + Math.floor(next() * left);
					const recovery = await device(board, { ...told, cutAfterOps: second, onEvent });
					fetched += delivery.fetched(recovery);
					told = delivery.again(name, recovery, told);
					if (recovery.end === "power-cut") {
						cuts.push(second);
						doubleCuts++;
					}
				}
			}
			const final = await device(board, { ...told, onEvent, maxBoots: options.maxBoots });
			fetched += delivery.fetched(final);
			for (const boot of events.filter((event) => event.event === "boot"))
				if (!boot.version) violations.push(`booted slot ${boot.slot} without a valid image`);
			if (final.running.sha256 !== published) violations.push(`running ${final.running.version}, not the published image`);
			if (final.result !== 1) violations.push(`final result ${final.result}`);
			if (final.boots > options.maxBoots) violations.push(`${final.boots} boots to complete`);
			const reports = delivery.reports(name, events);
			if (reports.count === 0) violations.push("final result never reported");
			if (reports.distinct > 1) violations.push("conflicting results reported");
			if (delivery.jobs && reports.count > 1) violations.push(`${reports.count} terminal statuses accepted`);
			const refetched = fetched - delivery.size;
			if (refetched > cuts.length * delivery.perCut) violations.push(`re-fetched ${refetched} for ${cuts.length} cut(s)`);
			const run = { cuts, violations, refetched, bootsToCompletion: final.boots, resultReports: reports.count };
			runs.push(run);
			options.onRun?.(run);
			fs.rmSync(board, { recursive: true, force: true });
		}
		const perCut = runs.map((run) => run.refetched / run.cuts.length);
		const boots = runs.map((run) => run.bootsToCompletion);
		return {
			engine: options.engine,
			transport: delivery.transport,
			unit: delivery.unit,
			totalOps,
			cutPointsTried: runs.length,
			doubleCuts,
			blockEraseCuts: cutKinds.filter((kind) => kind === "flash-block-erase").length,
			sectorEraseCuts: cutKinds.filter((kind) => kind === "flash-erase").length,
			violations: runs.flatMap((run) => run.violations.map((v) => `cut ${run.cuts.join("+")}: ${v}`)),
			refetchPerCut: { mean: Number(mean(perCut).toFixed(1)), max: Math.max(...perCut) },
			bootsToCompletion: { mean: Number(mean(boots).toFixed(2)), max: Math.max(...boots) },
			duplicateReports: runs.filter((run) => run.resultReports > 1).length,
			seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
		};
	}
	finally {
		await delivery.close();
		fs.rmSync(work, { recursive: true, force: true });
	}
}

/**
	The most patch bytes between two checkpoints the applier makes (the start and the end count as ones): what
	one cut may fetch again. Found by applying the patch to `base` with nowhere to write.
*/
export function largestCheckpointGap(patch: Uint8Array, base: Uint8Array, checkpointBytes: number): number {
	const header = emptyHeader();
	const answer = readHeader(patch, Math.min(patch.length, maxHeaderBytes), header);
	if (answer !== "ok") throw new Error(`not a patch: ${answer}`);
	const slot = { byteLength: 1 << 24, sectorSize: 4096, blockSize: 65536, erase() {}, eraseBlock() {}, write() {}, readInto() {} };
	const writer = new SlotWriter(slot, 1024, () => false);
	writer.begin(0, true, header.newSize);
	const running = { byteLength: base.length, readInto: (offset: number, length: number, into: Uint8Array) => into.set(base.subarray(offset, offset + length)) };
	const offsets = [0];
	const applier = new SequentialApply({ running, slot, writer }, decompressorFor(header), header.newSize, base.length, checkpointBytes,
		(state) => offsets.push(header.dataOffset + state.decoder.consumed));
	applier.write(patch.subarray(header.dataOffset));
	offsets.push(patch.length);
	return Math.max(...offsets.slice(1).map((offset, i) => offset - offsets[i]));
}

function copyBoard(from: string, work: string, name: string): string {
	const to = path.join(work, name);
	fs.rmSync(to, { recursive: true, force: true });
	fs.cpSync(from, to, { recursive: true });
	return to;
}

function mean(values: number[]): number {
	return values.length ? values.reduce((sum, value) => sum + value, 0) / values.length : 0;
}

export function tortureTable(summaries: TortureSummary[]): string {
	const lines = [
		"| transport | engine | writes in the life cycle | cut points tried | double cuts | cuts in block / sector erases | violations | re-fetched per cut (mean / max) | boots to completion (mean / max) | repeated result reports | seconds |",
		"|---|---|---|---|---|---|---|---|---|---|---|",
	];
	for (const s of summaries)
		lines.push(`| ${s.transport} | ${s.engine} | ${s.totalOps} | ${s.cutPointsTried} | ${s.doubleCuts} | ${s.blockEraseCuts} / ${s.sectorEraseCuts} | ${s.violations.length} | ${s.refetchPerCut.mean} / ${s.refetchPerCut.max} ${s.unit} | ${s.bootsToCompletion.mean} / ${s.bootsToCompletion.max} | ${s.duplicateReports} | ${s.seconds} |`);
	return lines.join("\n");
}
