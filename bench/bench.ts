/*
	npm run bench: one run of the host-simulator benchmarks, side by side, over every transport: an HTTP(S) pull,
	an AWS IoT job with an MQTT stream (in-process aedes emulator, 4 KiB blocks, JSON and CBOR), a coap:// pull
	(Block2, 1024-byte blocks) and a Package pushed by the local LwM2M server (Block1 PUTs of 1024 bytes).
	  1. update throughput on loopback, node and xs engines, HTTP and HTTPS (the same server with a test PKI's
	     chain, on a thread of its own: server-thread.ts), against a plain Node download of the same bytes
	  2. bytes (HTTP) or blocks (MQTT) re-fetched per power cut; HTTP for three checkpoint intervals
	  3. persistent writes per MiB, for the same runs
	  4. XS heap slots during a 1 MiB and a 4 MiB update, as metered and after a collection (MQTT: after)
	  5. time on a real board projected from the W25Q32JV datasheet and the measured flash operations
	  6. patched HTTP updates against the full image each makes: the detools fixture (test/fixtures/delta) and pairs
	     of real executables (bench/real-pairs.ts: two releases of an npm package's native binary, fetched with
	     npm pack at the first run), each patch from the factory image the board runs: bytes received, time on
	     both engines, live XS heap above the code, and the time projected on a real board
	Writes bench/results.json, bench/results.md and bench/heap.svg, and prints the markdown.
	`npm run bench -- --only delta` runs part 6 alone and writes bench/delta-results.json and delta-results.md.
*/

import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { Board } from "../host-sim/board/board";
import { BoardStorage, type Wear } from "../host-sim/board/board-files";
import { busyMs, w25q32jv, type FlashStats } from "../host-sim/board/flash-chip";
import type { BoardLayout } from "../host-sim/board/partition-table";
import { PowerSupply } from "../host-sim/board/power";
import { prepareFactoryBoard, runDevice, type DeviceCommand, type DeviceOptions, type DeviceOutcome, type EngineName } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { startAwsIot } from "../host-sim/server/aws-iot";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { Lwm2mServer } from "../host-sim/server/lwm2m-server";
import { Lwm2mUpdate } from "../host-sim/server/lwm2m-update";
import { createPatch, type CompressionName } from "../host-sim/delta/create-patch";
import { RecordStore } from "../src/agent/record";
import { loadPair, realPairs } from "./real-pairs";
import { codeSlots } from "./heap-code";
import { seeded } from "../test/support/sim";
import { makePki } from "../test/support/pki";
import { dtlsBench, dtlsMarkdown } from "./dtls";
import { startServerThread } from "./server-thread";

const KiB = 1024, MiB = 1024 * KiB;
const repeats = 3;
/** Throughput runs a transport and engine: single runs on a shared host spread by ±30 % and more (one slow spell can take three of seven runs). */
const throughputRepeats = 11;
const cutsPerInterval = 10;
const intervals = [4 * KiB, 16 * KiB, 64 * KiB];
const defaultInterval = 16 * KiB;
const engines = ["node", "xs"] as const;
const heapKinds = ["metered", "live"] as const;
const heapSizes = ["1MiB", "4MiB"] as const;
const formats = ["json", "cbor"] as const;
const blockSize = 4096;
/** Power-ons cut in a row on one board, each after 1 to maxCutOps persistent writes (as test/aws-update.test.ts). */
const mqttCuts = 10, maxCutOps = 80;
/** As the AWS tests: fast re-requests and retries, so a lost message costs little real time. */
const quickMqtt = { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100 };
/** CoAP block size, both ways: the Block2 size the agent asks for and the Block1 size the server pushes. */
const coapBlockSize = 1024;
const coapModes = ["pull", "push"] as const;
/** As test/lwm2m.test.ts: quick registration retries; the run ends when the server hears the final result. */
const lwm2mConfig = { lifetime: 120, registrationRetryMs: 300, backoffBaseMs: 100 };

/** Espressif's measured HTTPS OTA rate on an ESP32 (issue 22: idf-extra-components PR #156), bytes a second. */
const linkBytesPerSecond = 25_000;
/**
	ESP32 flash reads, from ESP-IDF's own performance floors (components/idf_test/include/esp32/idf_performance_target.h,
	set at about 70 % of the measured average): esp_flash_read of 4 B at 35,200 B/s and of 2 KiB at 6,650,000 B/s.
	A line through both: a fixed cost per call plus a cost per byte. An estimate, and a cautious one.
*/
const flashRead = (() => {
	const small = 4 / 35_200, large = 2048 / 6_650_000;
	const perByte = (large - small) / (2048 - 4);
	return { perCallSeconds: small - 4 * perByte, perByteSeconds: perByte };
})();

type Format = (typeof formats)[number];
type CoapMode = (typeof coapModes)[number];
type Published = { url: string; coapUrl: string; sha256: string; length: number; bytes: Uint8Array };
/** How one update reaches a board: an HTTP or coap:// URL, a fresh thing with its own job, or a push by the LwM2M server. */
type Delivery = { transport: "http" } | { transport: "https" } | { transport: "mqtt"; format: Format } | { transport: "coap"; mode: CoapMode };
type UpdateTiming = { downloadVerifyMs: number; downloadMs: number; downloadMiBps: number; wholeMs: number; receivedPerByte: number };
type CutRun = { cutAt: number; kind: string; refetched: number };
type IntervalResult = {
	checkpointBytes: number;
	ops: number;
	/** First and last persistent write of the download phase, the range the cuts are drawn from. */
	downloadOps: [number, number];
	wear: Wear;
	cuts: CutRun[];
	refetched: { mean: number; max: number };
};
type HeapSample = { received: number; slots: number };
type HeapRun = { peak: number; steady: number; samples: HeapSample[] };
type HeapResults = Record<(typeof heapKinds)[number], Record<(typeof heapSizes)[number], HeapRun>>;
/** Live XS heap over MQTT, per stream format. */
type MqttHeapResults = Record<Format, Record<(typeof heapSizes)[number], HeapRun>>;
/** Live XS heap over CoAP, pulled and pushed. */
type CoapHeapResults = Record<CoapMode, Record<(typeof heapSizes)[number], HeapRun>>;
type MqttCut = { cutAt: number; kind: string; fetched: number; kept: number; refetched: number };
type MqttCutResult = {
	format: Format;
	checkpointBytes: number;
	blocks: number;
	ops: number;
	wear: Wear;
	cuts: MqttCut[];
	/** Blocks the final, uncut power-on fetched beyond what was still missing. */
	finalRefetched: number;
	refetched: { mean: number; max: number };
};
type Timings = Record<(typeof engines)[number], UpdateTiming & { runs: UpdateTiming[] }>;

const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b), middle = sorted.length >> 1;
	return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
const fixed = (n: number, digits = 1) => n.toFixed(digits);
const int = (n: number) => Math.round(n).toLocaleString("en-US");
const span = ([typical, maximum]: number[]) => `${fixed(typical)} / ${fixed(maximum)}`;
const table = (header: string[], rows: string[][]) =>
	[`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((row) => `| ${row.join(" | ")} |`)].join("\n");
const note = (text: string) => process.stderr.write(`bench: ${text}\n`);

const args = process.argv.slice(2);
const only = args[0] === "--only" ? args[1] : undefined;
if (args.length && (!(only === "delta" || only === "throughput") || args.length !== 2)) {
	process.stderr.write("usage: npm run bench [-- --only delta|throughput]\n");
	process.exit(2);
}

const started = performance.now();
const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-bench-"));
const www = path.join(work, "www");
fs.mkdirSync(www);
const pki = makePki(work);
const servers = await startServerThread(www, { certPem: pki.server.chainPem, keyPem: pki.server.keyPem });
const aws = await startAwsIot({});
const coapFiles = await CoapFileServer.start();
const lwm2m = await Lwm2mServer.start();
const pristine: Record<BoardLayout, string> = { "4MB": path.join(work, "pristine-4mb"), "16MB": path.join(work, "pristine-16mb") };
let boards = 0, things = 0;

try {
	for (const layout of ["4MB", "16MB"] as const) prepareFactoryBoard(pristine[layout], layout);
	await (only === "delta" ? deltaBench() : only === "throughput" ? throughputBench() : wholeBench());
}
finally {
	await aws.close();
	await coapFiles.close();
	await lwm2m.close();
	await servers.close();
	fs.rmSync(work, { recursive: true, force: true });
}

/** Part 6 alone: its own results files, so the whole run's stay as they were. */
async function deltaBench() {
	note("xs heap, the firmware's code alone");
	const heapCode = await codeSlots();
	const delta = await deltaRuns();
	const results = { date: new Date().toISOString(), node: process.version, host: hostName(), load: os.loadavg(), seconds: (performance.now() - started) / 1000, heapCode, delta };
	const markdown = `Run of ${results.date.slice(0, 10)} (\`--only delta\`): ${results.host}, Node ${results.node}, load average ${results.load.map((n) => n.toFixed(1)).join(" / ")} at the end, `
		+ `${results.seconds.toFixed(0)} s in all.\n\n${deltaMarkdown(delta, heapCode)}`;
	fs.writeFileSync(new URL("./delta-results.json", import.meta.url), JSON.stringify(results, null, "\t") + "\n");
	fs.writeFileSync(new URL("./delta-results.md", import.meta.url), markdown);
	console.log(markdown);
	note(`done in ${results.seconds.toFixed(1)} s`);
}

/** Part 1 alone (`--only throughput`): the throughput table, in its own results files. */
async function throughputBench() {
	const measured = await measureThroughput(publish(MiB));
	const results = { date: new Date().toISOString(), node: process.version, host: hostName(), load: os.loadavg(), seconds: (performance.now() - started) / 1000, imageBytes: MiB, ...measured };
	const markdown = `Run of ${results.date.slice(0, 10)} (\`--only throughput\`): ${results.host}, Node ${results.node}, load average ${results.load.map((n) => n.toFixed(1)).join(" / ")} at the end, `
		+ `${results.seconds.toFixed(0)} s in all.\n\n${throughputMarkdown(results)}\n`;
	fs.writeFileSync(new URL("./throughput-results.json", import.meta.url), JSON.stringify(results, null, "\t") + "\n");
	fs.writeFileSync(new URL("./throughput-results.md", import.meta.url), markdown);
	console.log(markdown);
	note(`done in ${results.seconds.toFixed(1)} s`);
}

/**
	Every transport on both engines, median of `throughputRepeats` runs after an untimed one, and the plain Node download:
	one run of it just before each timed run, so that its median has met the host as the board's runs did.
*/
async function measureThroughput(image: Published) {
	await plainDownload(image);
	const plainRuns: number[] = [];
	const throughputOf = async (delivery: Delivery) => {
		const timings = {} as Timings;
		for (const engine of engines) {
			note(`throughput, ${describe(delivery)}, ${engine} engine`);
			// Untimed first run: builds the device bundle, warms the JIT and the server's ETag cache.
			await timedUpdate(image, engine, delivery);
			const runs: UpdateTiming[] = [];
			for (let i = 0; i < throughputRepeats; i++) {
				plainRuns.push(await plainDownload(image));
				runs.push(await timedUpdate(image, engine, delivery));
			}
			const middle = (key: keyof UpdateTiming) => median(runs.map((run) => run[key]));
			timings[engine] = {
				downloadVerifyMs: middle("downloadVerifyMs"), downloadMs: middle("downloadMs"), downloadMiBps: middle("downloadMiBps"),
				wholeMs: middle("wholeMs"), receivedPerByte: middle("receivedPerByte"), runs,
			};
		}
		return timings;
	};
	const throughput = await throughputOf({ transport: "http" });
	const httpsThroughput = await throughputOf({ transport: "https" });
	const mqttThroughput = {} as Record<Format, Timings>;
	for (const format of formats) mqttThroughput[format] = await throughputOf({ transport: "mqtt", format });
	const coapThroughput = {} as Record<CoapMode, Timings>;
	for (const mode of coapModes) coapThroughput[mode] = await throughputOf({ transport: "coap", mode });
	const plainMs = median(plainRuns);
	const plain = { ms: plainMs, MiBps: image.length / MiB / (plainMs / 1000), runs: plainRuns };
	return { throughput, httpsThroughput, mqttThroughput, coapThroughput, plain };
}

async function wholeBench() {
	const image = publish(MiB), largeImage = publish(4 * MiB);
	const { throughput, httpsThroughput, mqttThroughput, coapThroughput, plain } = await measureThroughput(image);

	const cuts: IntervalResult[] = [];
	for (const checkpointBytes of intervals) {
		note(`power cuts, ${checkpointBytes / KiB} KiB checkpoints`);
		cuts.push(await cutRuns(image, checkpointBytes));
	}
	const mqttCutResults = {} as Record<Format, MqttCutResult>;
	for (const format of formats) {
		note(`power cuts, MQTT ${format}`);
		mqttCutResults[format] = await mqttCutRuns(image, format);
	}

	const heap = {} as HeapResults;
	for (const kind of heapKinds) {
		heap[kind] = {} as HeapResults[typeof kind];
		for (const size of heapSizes) {
			note(`xs heap, ${size}, ${kind}`);
			heap[kind][size] = await heapRun(size === "1MiB" ? image : largeImage, kind === "live", { transport: "http" });
		}
	}
	const httpsHeap = {} as HeapResults["live"];
	for (const size of heapSizes) {
		note(`xs heap, ${size}, live, HTTPS`);
		httpsHeap[size] = await heapRun(size === "1MiB" ? image : largeImage, true, { transport: "https" });
	}
	/** Live XS heap runs, for a 1 MiB and a 4 MiB image, for each of `keys`' deliveries. */
	const liveHeaps = async <K extends string>(keys: readonly K[], delivery: (key: K) => Delivery) => {
		const runs = {} as Record<K, Record<(typeof heapSizes)[number], HeapRun>>;
		for (const key of keys) {
			runs[key] = {} as Record<(typeof heapSizes)[number], HeapRun>;
			for (const size of heapSizes) {
				note(`xs heap, ${size}, live, ${describe(delivery(key))}`);
				runs[key][size] = await heapRun(size === "1MiB" ? image : largeImage, true, delivery(key));
			}
		}
		return runs;
	};
	const mqttHeap: MqttHeapResults = await liveHeaps(formats, (format) => ({ transport: "mqtt", format }));
	const coapHeap: CoapHeapResults = await liveHeaps(coapModes, (mode) => ({ transport: "coap", mode }));

	note("xs heap, the firmware's code alone");
	const code = await codeSlots();
	const delta = await deltaRuns();
	note("dtls: handshake, 1 KiB records, session heap");
	const dtls = await dtlsBench();

	const projection = project([
		{ label: `HTTP update, ${defaultInterval / KiB} KiB checkpoints`, wear: cuts.find((result) => result.checkpointBytes === defaultInterval)!.wear },
		...formats.map((format) => ({ label: `MQTT ${format.toUpperCase()} update, ${defaultInterval / KiB} KiB checkpoints`, wear: mqttCutResults[format].wear })),
	], image.length);
	const results = {
		date: new Date().toISOString(),
		node: process.version,
		host: hostName(),
		imageBytes: image.length,
		seconds: (performance.now() - started) / 1000,
		throughput,
		https: {
			throughput: httpsThroughput,
			heapLive: Object.fromEntries(heapSizes.map((size) => [size, { peak: httpsHeap[size].peak, steady: httpsHeap[size].steady, downloadSamples: httpsHeap[size].samples.length }])),
		},
		plainDownload: plain,
		intervals: cuts,
		/** Live slots of the firmware's code loaded under xsnap, before the agent is built (bench/heap-code.ts). */
		heapCode: code,
		heap: Object.fromEntries(heapKinds.map((kind) => [kind, Object.fromEntries(heapSizes.map((size) => {
			const run = heap[kind][size];
			return [size, { peak: run.peak, steady: run.steady, downloadSamples: run.samples.length }];
		}))])),
		projection,
		delta,
		dtls,
		mqtt: {
			blockSize,
			checkpointBytes: defaultInterval,
			throughput: mqttThroughput,
			cuts: mqttCutResults,
			heapLive: Object.fromEntries(formats.map((format) => [format, Object.fromEntries(heapSizes.map((size) => {
				const run = mqttHeap[format][size];
				return [size, { peak: run.peak, steady: run.steady, downloadSamples: run.samples.length }];
			}))])),
		},
		coap: {
			blockSize: coapBlockSize,
			throughput: coapThroughput,
			heapLive: Object.fromEntries(coapModes.map((mode) => [mode, Object.fromEntries(heapSizes.map((size) => {
				const run = coapHeap[mode][size];
				return [size, { peak: run.peak, steady: run.steady, downloadSamples: run.samples.length }];
			}))])),
		},
	};
	const markdown = renderMarkdown(results, heap, httpsHeap, mqttHeap, coapHeap) + dtlsMarkdown(dtls);
	fs.writeFileSync(new URL("./results.json", import.meta.url), JSON.stringify(results, null, "\t") + "\n");
	fs.writeFileSync(new URL("./results.md", import.meta.url), markdown);
	fs.writeFileSync(new URL("./heap.svg", import.meta.url), renderHeapSvg(heap, mqttHeap));
	console.log(markdown);
	note(`done in ${results.seconds.toFixed(1)} s`);
}

function hostName(): string {
	return `${os.cpus()[0]?.model.trim() ?? "unknown cpu"}, ${os.platform()} ${os.arch()}`;
}

function publish(size: number): Published {
	const bytes = makeAppImage({ size, version: "2.0.0" });
	const name = `app-${size / MiB}m.bin`;
	fs.writeFileSync(path.join(www, name), bytes);
	coapFiles.serve(`/${name}`, bytes);
	return { url: `${servers.url}/${name}`, coapUrl: `coap://127.0.0.1:${coapFiles.port}/${name}`, sha256: sha256Hex(bytes), length: bytes.length, bytes };
}

/*
	6. Patched updates against the full image each makes (the same target, so the same verify, switch and confirm).
	Each pair's board runs the pair's base as its factory image. The fixture pair's patch is the one detools made;
	the real pairs' are ours (createPatch), heatshrink (window 2^8, lookahead 2^7: what the device holds by default)
	and CRLE, each in esp_delta_ota framing.
*/
type DeltaKind = { kind: string; body: Uint8Array; makeSeconds?: number };
type DeltaPair = { label: string; layout: BoardLayout; base: Uint8Array; next: Uint8Array; kinds: DeltaKind[] };

function deltaPairs(): { pairs: DeltaPair[]; skipped: string[] } {
	const fixture = (name: string) => new Uint8Array(fs.readFileSync(new URL(`../test/fixtures/delta/${name}`, import.meta.url)));
	const next = fixture("new.bin");
	const pairs: DeltaPair[] = [{
		label: "fixture base.bin → new.bin", layout: "4MB", base: fixture("base.bin"), next,
		kinds: [{ kind: "detools heatshrink", body: fixture("esp-delta-ota.patch") }, { kind: "full image", body: next }],
	}];
	const skipped: string[] = [];
	for (const pair of realPairs) {
		note(`patched update: fetching ${pair.packageName} ${pair.from} and ${pair.to}`);
		const images = loadPair(pair);
		if ("skipped" in images) {
			note(images.skipped);
			skipped.push(images.skipped);
			continue;
		}
		const patch = (compression: CompressionName): DeltaKind => {
			note(`patched update: making the ${compression} patch for ${pair.label}`);
			const begin = performance.now();
			const body = createPatch(images.base, images.next, { compression, framing: "esp-delta-ota" });
			return { kind: compression, body, makeSeconds: (performance.now() - begin) / 1000 };
		};
		pairs.push({
			label: `${pair.packageName} ${pair.from} → ${pair.to}`, layout: pair.layout, base: images.base, next: images.next,
			kinds: [patch("heatshrink"), patch("crle"), { kind: "full image", body: images.next }],
		});
	}
	return { pairs, skipped };
}

async function deltaRuns() {
	const { pairs, skipped } = deltaPairs();
	const results = [];
	for (const [index, pair] of pairs.entries()) {
		const board = path.join(work, `pristine-delta-${index}`);
		prepareFactoryBoard(board, pair.layout, pair.base);
		const rows = [];
		for (const { kind, body, makeSeconds } of pair.kinds) {
			const name = `delta-${index}-${kind.replace(/\W+/g, "-")}`;
			fs.writeFileSync(path.join(www, name), body);
			const published: Published = { url: `${servers.url}/${name}`, coapUrl: "", sha256: sha256Hex(pair.next), length: pair.next.length, bytes: pair.next };
			const timing = {} as Record<EngineName, { downloadVerifyMs: number; wholeMs: number; receivedPerByte: number }>;
			for (const engine of engines) {
				note(`patched update: ${pair.label}, ${kind}, ${engine} engine`);
				await timedUpdate(published, engine, { transport: "http" }, board);
				const runs: UpdateTiming[] = [];
				for (let i = 0; i < repeats; i++) runs.push(await timedUpdate(published, engine, { transport: "http" }, board));
				timing[engine] = { downloadVerifyMs: median(runs.map((run) => run.downloadVerifyMs)), wholeMs: median(runs.map((run) => run.wholeMs)), receivedPerByte: median(runs.map((run) => run.receivedPerByte)) };
			}
			note(`patched update: ${pair.label}, ${kind}, flash work and xs heap`);
			const flash = await flashWork(published, board);
			const heapPeak = (await heapRun(published, true, { transport: "http" }, board)).peak;
			rows.push({ kind, bytes: body.length, makeSeconds, timing, flash, heapPeak });
		}
		results.push({ label: pair.label, layout: pair.layout, baseBytes: pair.base.length, imageBytes: pair.next.length, rows });
	}
	return { pairs: results, skipped, projection: { linkBytesPerSecond, flashRead, datasheet: w25q32jv } };
}

/**
	The flash work of one uncut update (node engine): the whole update's erases and page programs, preference
	traffic included (as part 5), and the reads of the running slot, the old image, from State 1 to State 2.
*/
async function flashWork(target: Published, board: string) {
	let running: Board | undefined, atStart: FlashStats | undefined, atEnd: FlashStats | undefined;
	const oldSlot = () => ({ ...running!.storage.appSlot(running!.runningSlot).stats });
	const outcome = await runDevice({
		dir: freshBoard(board), url: target.url,
		onBoard: (power) => { running = power; },
		onEvent: (event) => {
			if (event.event !== "state") return;
			if (event.state === 1 && !atStart) atStart = oldSlot();
			else if (event.state === 2 && !atEnd) atEnd = oldSlot();
		},
	});
	assertUpdated(outcome, target, "flash work run");
	if (!atStart || !atEnd) throw new Error("flash work run: no download phase");
	const reads = atEnd.reads - atStart.reads, bytesRead = atEnd.bytesRead - atStart.bytesRead;
	return { wear: outcome.wear, oldSlotReads: reads, oldSlotBytesRead: bytesRead, seconds: projectedSeconds(outcome.wear, reads, bytesRead, outcome.bytesFetched) };
}

/**
	Seconds on a real board, typical / max: the link at linkBytesPerSecond for `received` bytes, reading the old
	slot, erasing and programming (W25Q32JV, as part 5). One core does them one after another: their sum.
*/
function projectedSeconds(wear: Wear, reads: number, bytesRead: number, received: number) {
	const read = reads * flashRead.perCallSeconds + bytesRead * flashRead.perByteSeconds;
	const flash = flashWorkOf(wear).seconds;
	const link = received / linkBytesPerSecond;
	return { link, read, flash, total: flash.map((seconds) => link + read + seconds) };
}

function describe(delivery: Delivery): string {
	if (delivery.transport === "coap") return delivery.mode === "pull" ? "CoAP pull (Block2)" : "CoAP push (Block1)";
	return delivery.transport === "mqtt" ? `MQTT ${delivery.format.toUpperCase()}` : delivery.transport.toUpperCase();
}

/**
	Device options for one update: the URL, a fresh thing with a new job for `target`, or a fresh LwM2M endpoint
	the server pushes `target` to once it registers (the run ends when the server hears the final result).
*/
function deliver(target: Published, delivery: Delivery): { options: Partial<DeviceOptions>; thing?: string; jobId?: string; pushed?: Lwm2mUpdate } {
	if (delivery.transport === "http") return { options: { url: target.url } };
	if (delivery.transport === "coap" && delivery.mode === "pull") return { options: { url: target.coapUrl } };
	if (delivery.transport === "coap") {
		const endpoint = `bench-push-${++things}`, commands: DeviceCommand[] = [];
		const pushed = new Lwm2mUpdate(lwm2m, endpoint, () => lwm2m.push(endpoint, "/5/0/0", Buffer.from(target.bytes), { blockSize: coapBlockSize }), () => {
			pushed.close();
			commands.push({ action: "shutdown" });
		});
		return { options: { commands, runFor: 600_000, config: { ...lwm2mConfig, lwm2m: lwm2m.url, endpoint } }, pushed };
	}
	if (delivery.transport === "https")
		return { options: { url: target.url.replace(servers.url, servers.secureUrl), credentials: { ca: pki.root.certDer } } };
	const thing = `bench-${delivery.format}-${++things}`;
	const { jobId } = aws.createJob(thing, { image: target.bytes, form: "fota", version: "2.0.0", streamFormat: delivery.format });
	const config = { ...quickMqtt, blockSize, streamFormat: delivery.format };
	return { options: { mqtt: aws.url, thing, config }, thing, jobId };
}

/** When the jobs service accepted the SUCCEEDED status of `jobId` (Date.now() time), or throws. */
function succeededAt(thing: string, jobId: string): number {
	const execution = aws.executions(thing).find((e) => e.jobId === jobId);
	const accepted = execution?.updates.filter((u) => u.outcome === "accepted" && u.status === "SUCCEEDED") ?? [];
	if (execution?.status !== "SUCCEEDED" || accepted.length !== 1) throw new Error(`${thing}: job ${jobId} is ${execution?.status}, SUCCEEDED accepted ${accepted.length} times`);
	return accepted[0].at;
}

/** A factory-fresh board: a copy of `from`, so creating its flash files stays out of every timing. */
function freshBoard(from = pristine["4MB"]): string {
	const dir = path.join(work, `board-${++boards}`);
	fs.cpSync(from, dir, { recursive: true });
	return dir;
}

function assertUpdated(outcome: DeviceOutcome, target: Published, what: string): void {
	// A pushed update's run ends with the shutdown sent once the server heard the result.
	if ((outcome.end !== "idle" && outcome.end !== "shut-down") || outcome.result !== 1 || outcome.running.sha256 !== target.sha256)
		throw new Error(`${what}: the update did not complete (end ${outcome.end}, result ${outcome.result})`);
}

// 1. Throughput: the phases are timed from the device's own reports.
async function timedUpdate(target: Published, engine: EngineName, delivery: Delivery, board = pristine["4MB"]): Promise<UpdateTiming> {
	let state1 = 0, state2 = 0;
	let first: [number, number] | undefined, last: [number, number] | undefined;
	const onEvent: DeviceOptions["onEvent"] = (event) => {
		const now = performance.now();
		if (event.event === "state" && event.state === 1 && !state1) state1 = now;
		else if (event.event === "state" && event.state === 2 && !state2) state2 = now;
		else if (event.event === "progress") {
			first ??= [now, event.received as number];
			last = [now, event.received as number];
		}
	};
	const dir = freshBoard(board);
	const { options, thing, jobId } = deliver(target, delivery);
	const [begin, wallBegin] = [performance.now(), Date.now()];
	const outcome = await runDevice({ dir, engine, ...options, onEvent });
	// MQTT: to the jobs service's acceptance of SUCCEEDED. The simulator then idles out the status retry timer
	// the agent leaves armed (statusRetryMs), which is no part of the update.
	const wholeMs = thing ? succeededAt(thing, jobId!) - wallBegin : performance.now() - begin;
	const what = `${describe(delivery)} ${engine} update`;
	assertUpdated(outcome, target, what);
	if (!first || !last || !state2) throw new Error(`${what}: no progress reports`);
	// Progress is reported at checkpoints, so first → last spans all but the first interval.
	const downloadMs = last[0] - first[0];
	const received = thing ? outcome.mqttBytesReceived : delivery.transport === "coap" ? outcome.datagramBytesReceived : outcome.bytesFetched;
	return { downloadVerifyMs: state2 - state1, downloadMs, downloadMiBps: (last[1] - first[1]) / MiB / (downloadMs / 1000), wholeMs, receivedPerByte: received / target.length };
}

/**
	Milliseconds for http.get of the image piped into a new file, request to last byte on disk. A new file each
	time, as each board is new: rewriting one file makes ext4 flush the old blocks (its replace-by-truncate
	heuristic), which measured anything from 5 to 27 ms for the same MiB.
*/
async function plainDownload(target: Published): Promise<number> {
	const file = path.join(work, `plain-${process.hrtime.bigint()}.bin`);
	const begin = performance.now();
	await new Promise<void>((done, fail) => {
		http.get(target.url, (response) => {
			const out = fs.createWriteStream(file);
			response.pipe(out);
			out.on("finish", done);
			out.on("error", fail);
		}).on("error", fail);
	});
	const ms = performance.now() - begin;
	if (fs.statSync(file).size !== target.length) throw new Error("plain download incomplete");
	return ms;
}

// 2 and 3. Power cuts and wear (node engine: the agent is the same code on both).
async function cutRuns(target: Published, checkpointBytes: number): Promise<IntervalResult> {
	const config = { checkpointBytes };
	const whole = await runDevice({ dir: freshBoard(), url: target.url, config });
	assertUpdated(whole, target, `uncut update, ${checkpointBytes} byte checkpoints`);
	const cutUpdate = async (cutAt: number) => {
		let lastState = 0;
		const outcome = await runDevice({ dir: freshBoard(), url: target.url, cutAfterOps: cutAt, config, onEvent: (event) => {
			if (event.event === "state") lastState = event.state as number;
		} });
		return { fetched: outcome.bytesFetched, lastState };
	};
	// The download's writes: from the first one after body bytes arrived to the last one before State 2.
	const firstOp = await firstWhere(1, whole.ops, async (n) => (await cutUpdate(n)).fetched > 0);
	const lastOp = await firstWhere(firstOp, whole.ops, async (n) => (await cutUpdate(n)).lastState >= 2) - 1;
	const random = seeded(checkpointBytes);
	const cuts: CutRun[] = [];
	for (let i = 0; i < cutsPerInterval; i++) {
		const cutAt = firstOp + Math.floor(random() * (lastOp - firstOp + 1));
		const dir = freshBoard();
		let kind = "";
		const cut = await runDevice({ dir, url: target.url, cutAfterOps: cutAt, config, onEvent: (event) => {
			if (event.event === "power-cut") kind = event.kind as string;
		} });
		if (cut.end !== "power-cut") throw new Error(`no cut at write ${cutAt}`);
		const resumed = await runDevice({ dir, config });
		assertUpdated(resumed, target, `resume after a cut at write ${cutAt}`);
		cuts.push({ cutAt, kind, refetched: cut.bytesFetched + resumed.bytesFetched - target.length });
	}
	const refetched = cuts.map((cut) => cut.refetched);
	return { checkpointBytes, ops: whole.ops, downloadOps: [firstOp, lastOp], wear: whole.wear, cuts, refetched: { mean: mean(refetched), max: Math.max(...refetched) } };
}

/*
	2 and 3 over MQTT, as test/aws-update.test.ts cuts: one board, one thing and job, mqttCuts power-ons in a row
	each cut after 1 to maxCutOps persistent writes, then one uncut. A cut's re-fetched blocks: those its
	power-on fetched less those it left committed in the record (the rest come again after the cut).
*/
async function mqttCutRuns(target: Published, format: Format): Promise<MqttCutResult> {
	const delivery: Delivery = { transport: "mqtt", format };
	const blocks = Math.ceil(target.length / blockSize);
	const first = deliver(target, delivery);
	const whole = await runDevice({ dir: freshBoard(), ...first.options });
	assertUpdated(whole, target, `uncut MQTT ${format} update`);
	succeededAt(first.thing!, first.jobId!);
	const { options, thing, jobId } = deliver(target, delivery);
	const dir = freshBoard();
	const random = seeded(format === "cbor" ? 17 : 13);
	const cuts: MqttCut[] = [];
	let kept = 0;
	for (let i = 0; i < mqttCuts; i++) {
		const cutAt = 1 + Math.floor(random() * maxCutOps);
		let kind = "";
		const cut = await runDevice({ dir, ...options, cutAfterOps: cutAt, onEvent: (event) => {
			if (event.event === "power-cut") kind = event.kind as string;
		} });
		if (cut.end !== "power-cut") throw new Error(`MQTT ${format}: no cut at write ${cutAt} of power-on ${i + 1}`);
		const now = committedBlocks(dir, blocks);
		cuts.push({ cutAt, kind, fetched: cut.blocksFetched, kept: now - kept, refetched: cut.blocksFetched - (now - kept) });
		kept = now;
	}
	const final = await runDevice({ dir, ...options });
	assertUpdated(final, target, `MQTT ${format}: the update after ${mqttCuts} cuts`);
	succeededAt(thing!, jobId!);
	const refetched = cuts.map((cut) => cut.refetched);
	return {
		format, checkpointBytes: defaultInterval, blocks, ops: whole.ops, wear: whole.wear, cuts,
		finalRefetched: final.blocksFetched - (blocks - kept), refetched: { mean: mean(refetched), max: Math.max(...refetched) },
	};
}

/** Blocks the board's record holds as committed: what a power-on would not fetch again. */
function committedBlocks(dir: string, blocks: number): number {
	const nvs = BoardStorage.open(dir, new PowerSupply()).nvs;
	const record = new RecordStore({ get: (key) => nvs.get("xs-ota", key), set() {}, delete() {} }, () => {}).load();
	if (!record?.jobId) return 0;
	if (record.totalSize && record.committed === record.totalSize) return blocks;
	let count = 0;
	for (const byte of record.blocks ?? []) for (let bits = byte; bits; bits &= bits - 1) count++;
	return count;
}

/** Smallest n in [low, high] for which `holds` is true; it is false, then true, as n grows. */
async function firstWhere(low: number, high: number, holds: (n: number) => Promise<boolean>): Promise<number> {
	while (low < high) {
		const middle = (low + high) >> 1;
		if (await holds(middle)) high = middle;
		else low = middle + 1;
	}
	return low;
}

// 4. XS heap, on the 16 MB board: a 4 MiB image does not fit the default 1.875 MiB slot.
async function heapRun(target: Published, heapAfterGc: boolean, delivery: Delivery, board = pristine["16MB"]): Promise<HeapRun> {
	let state = 0, received = 0;
	const samples: HeapSample[] = [];
	const { options, thing, jobId } = deliver(target, delivery);
	const outcome = await runDevice({
		dir: freshBoard(board), engine: "xs", ...options, heapAfterGc,
		onEvent: (event) => {
			if (event.event === "state") state = event.state as number;
			else if (event.event === "progress") received = event.received as number;
		},
		onHeap: (slots) => { if (state === 1) samples.push({ received, slots }); },
	});
	assertUpdated(outcome, target, `xs heap run, ${describe(delivery)}, ${target.length} bytes`);
	if (thing) succeededAt(thing, jobId!);
	const secondHalf = samples.slice(samples.length >> 1).map((sample) => sample.slots);
	return { peak: Math.max(...outcome.heapSlots), steady: median(secondHalf), samples };
}

/*
	5. Winbond W25Q32JV, typical / maximum (host-sim/board/flash-chip.ts holds the datasheet's times). Moddable runs
	the download, erase and program on one core, one after the other, so the honest projection is their sum;
	max(link, flash) is what full overlap would give. The simulated chip counts what the update did: 4 KiB sector
	and 64 KiB block erases apart, and page programs as the writes touched pages (a write that straddles a page
	boundary costs two). Each preference set costs two page programs (the new entry; the old one marked erased),
	and NVS page recycling one 4 KiB sector erase per 4 KiB of preference bytes.
*/
function project(updates: { label: string; wear: Wear }[], imageBytes: number) {
	const imagePages = Math.ceil(imageBytes / 256);
	const measured = updates.map(({ label, wear }) => ({ label, ...flashWorkOf(wear) }));
	const sectorFloor = chipWork(Math.ceil(imageBytes / 4096), 0, imagePages);
	const blockFloor = chipWork(0, Math.ceil(imageBytes / 65536), imagePages);
	const http = measured[0].seconds;
	const links = [1, 10].map((mbps) => {
		const link = (imageBytes * 8) / (mbps * 1e6);
		return {
			mbps,
			linkSeconds: link,
			sum: http.map((flash) => link + flash),
			overlap: http.map((flash) => Math.max(link, flash)),
			sumBlockFloor: blockFloor.seconds.map((flash) => link + flash),
		};
	});
	return { datasheet: w25q32jv, measured, sectorFloor, blockFloor, overBlockFloor: http[0] / blockFloor.seconds[0], links };
}

/** Chip time, typical / max seconds, of so many erases and page programs. */
function chipWork(sectorErases: number, blockErases: number, pagePrograms: number) {
	const stats = { erases: sectorErases, blockErases, pagePrograms, writes: 0, bytesWritten: 0, reads: 0, bytesRead: 0 };
	return { sectorErases, blockErases, pagePrograms, seconds: busyMs(stats).map((ms) => ms / 1000) };
}

/** An update's erases and page programs, each preference set costing two programs and NVS recycling a sector per 4 KiB. */
function flashWorkOf(wear: Wear) {
	return chipWork(wear.flashErases + Math.ceil(wear.preferenceBytes / 4096), wear.flashBlockErases, wear.flashPagePrograms + 2 * wear.preferenceSets);
}

type Results = {
	date: string;
	host: string;
	node: string;
	imageBytes: number;
	seconds: number;
	heapCode: number;
	throughput: Record<(typeof engines)[number], UpdateTiming>;
	https: { throughput: Record<(typeof engines)[number], UpdateTiming> };
	plainDownload: { ms: number; MiBps: number; runs: number[] };
	intervals: IntervalResult[];
	projection: ReturnType<typeof project>;
	delta: Awaited<ReturnType<typeof deltaRuns>>;
	mqtt: { throughput: Record<Format, Record<(typeof engines)[number], UpdateTiming>>; cuts: Record<Format, MqttCutResult> };
	coap: { throughput: Record<CoapMode, Record<(typeof engines)[number], UpdateTiming>> };
};

/** Part 6's two tables: the runs on the host, then the projection on a real board. */
function deltaMarkdown(delta: Awaited<ReturnType<typeof deltaRuns>>, heapCode: number): string {
	const { linkBytesPerSecond: link, flashRead: read, datasheet } = delta.projection;
	const rows = delta.pairs.flatMap((pair) => pair.rows.map((row) => ({ pair, row, full: pair.rows.find((other) => other.kind === "full image")! })));
	const name = (pair: (typeof delta.pairs)[number], kind: string) => `${pair.label}: ${kind}`;
	return [
		`**Patched update** (HTTP, median of ${repeats} runs): each pair's board runs the pair's base as its factory image and `
			+ "updates to the next image, by a patch in esp_delta_ota framing or by the image sent whole; the same verify, switch and "
			+ "confirm follow. The fixture's patch is detools' (test/fixtures/delta); the real pairs are two releases of an npm "
			+ "package's native binary (bench/real-pairs.ts), each the code segment of an ESP32 app image, patched by our "
			+ "createPatch (heatshrink window 2^8, lookahead 2^7; made in the seconds shown). A 2.3 MB image needs the 16 MB board's "
			+ "slots (boards/*/partitions.csv have 1.875 MiB). Heap: the live peak less the slots the firmware's code holds (bench/heap-code.ts), xs engine.",
		...delta.skipped.map((reason) => `\nNot measured: ${reason}.`),
		"",
		table(["pair: package", "image B", "package B", "÷ image", ...engines.flatMap((engine) => [`${engine}: download + verify ms`, "whole update ms"]), "XS peak above the code"],
			rows.map(({ pair, row }) => [name(pair, row.kind + (row.makeSeconds === undefined ? "" : ` (${fixed(row.makeSeconds)} s)`)), int(pair.imageBytes), int(row.bytes), fixed(row.bytes / pair.imageBytes, 3),
				...engines.flatMap((engine) => [int(row.timing[engine].downloadVerifyMs), int(row.timing[engine].wholeMs)]), int(row.heapPeak - heapCode)])),
		"",
		`**Patched update projected on a real board** (typical / max seconds): the link at Espressif's measured ${int(link / 1000)} KB/s for `
			+ "HTTPS OTA (idf-extra-components PR #156, issue 22) for the bytes the board fetched; reading the old image, the reads of the "
			+ "running slot the simulated chip counted from State 1 to State 2, at an estimated "
			+ `${fixed(read.perCallSeconds * 1e6, 0)} µs a read plus ${fixed(1 / read.perByteSeconds / 1e6)} MB/s (a line through ESP-IDF's ESP32 `
			+ "esp_flash_read floors for 4 B and 2 KiB reads, components/idf_test/include/esp32/idf_performance_target.h); erasing and "
			+ `programming as *Projected on a real board* (W25Q32JV: ${datasheet.sectorEraseMs.join(" / ")} ms a sector, ${datasheet.blockEraseMs.join(" / ")} ms a 64 KiB block, `
			+ `${datasheet.pageProgramMs.join(" / ")} ms a page), preference traffic included. One core does them one after another: the total is `
			+ "their sum. Left out: decompressing and patching on the CPU, hashing, the reboot.",
		"",
		table(["pair: package", "link s", "old-slot reads", "read s", "4 KiB erases", "64 KiB erases", "page programs", "erase + program s", "total s", "÷ full image"],
			rows.map(({ pair, row, full }) => {
				const { flash: { wear, oldSlotReads, oldSlotBytesRead, seconds } } = row, work = flashWorkOf(wear);
				return [name(pair, row.kind), fixed(seconds.link), `${int(oldSlotReads)} (${int(oldSlotBytesRead)} B)`, fixed(seconds.read, 2), int(work.sectorErases), int(work.blockErases),
					int(work.pagePrograms), span(seconds.flash), span(seconds.total), fixed(seconds.total[0] / full.flash.seconds.total[0], 2)];
			})),
		"",
	].join("\n");
}

type EngineTimings = Record<(typeof engines)[number], UpdateTiming>;
type Throughput = {
	imageBytes: number;
	throughput: EngineTimings;
	httpsThroughput: EngineTimings;
	mqttThroughput: Record<Format, EngineTimings>;
	coapThroughput: Record<CoapMode, EngineTimings>;
	plain: { ms: number; MiBps: number; runs: number[] };
};

/** Part 1's table and its caption. */
function throughputMarkdown(results: Throughput): string {
	const { plain } = results;
	const speedRow = (label: string, t: UpdateTiming) =>
		[label, fixed(t.downloadMiBps), `${fixed(plain.MiBps / t.downloadMiBps)}×`, int(t.downloadVerifyMs), int(t.wholeMs), fixed(t.receivedPerByte, 2)];
	const mqttCaption = `MQTT: an AWS IoT job with a stream of ${blockSize / KiB} KiB blocks on the in-process aedes emulator, `
		+ "a fresh thing and job for each run";
	const coapCaption = `CoAP pull: a coap:// Package URI on the local CoAP file server, Block2 blocks of ${coapBlockSize} bytes. `
		+ `CoAP push: the local LwM2M server writes the Package (/5/0/0) by Block1 PUTs of ${coapBlockSize} bytes, each after the `
		+ "previous one's 2.31, then executes Update; whole update: to the server hearing the final result";
	return [
		`**Update throughput**: ${results.imageBytes / MiB} MiB image, loopback, median of ${throughputRepeats} runs. HTTP(S): the update server on a thread `
			+ "of its own, for the boards and the plain download alike. Download: first to last checkpoint. "
			+ "Download + verify: State 1 to State 2. Whole update: power-on to confirmed, over two boots; over MQTT, to the "
			+ `jobs service accepting SUCCEEDED. ${mqttCaption}. ${coapCaption}. Received ÷ image: HTTP body bytes, MQTT payload bytes `
			+ "(job and stream messages), or CoAP datagram bytes (headers and LwM2M traffic included) the device received, per image byte.",
		"",
		table(["", "download MiB/s", "plain Node is faster by", "download + verify ms", "whole update ms", "received ÷ image"], [
			...engines.map((engine) => speedRow(`HTTP, ${engine} engine`, results.throughput[engine])),
			...engines.map((engine) => speedRow(`HTTPS, ${engine} engine`, results.httpsThroughput[engine])),
			...formats.flatMap((format) => engines.map((engine) => speedRow(`MQTT ${format.toUpperCase()}, ${engine} engine`, results.mqttThroughput[format][engine]))),
			...coapModes.flatMap((mode) => engines.map((engine) => speedRow(`${describe({ transport: "coap", mode })}, ${engine} engine`, results.coapThroughput[mode][engine]))),
			[`plain Node: http.get → file (no verify), median of ${plain.runs.length} runs, one before each timed run`, fixed(plain.MiBps), "–", int(plain.ms), "–", "1.00"],
		]),
	].join("\n");
}

function renderMarkdown(results: Results, heap: HeapResults, httpsHeap: HeapResults["live"], mqttHeap: MqttHeapResults, coapHeap: CoapHeapResults): string {
	const ms = (values: readonly number[]) => values.join(" / ");
	const flashRow = (label: string, row: { sectorErases: number; blockErases: number; pagePrograms: number; seconds: number[] }) =>
		[label, int(row.sectorErases), int(row.blockErases), int(row.pagePrograms), span(row.seconds), `${fixed(row.seconds[0] / projection.blockFloor.seconds[0], 2)}×`];
	const mib = results.imageBytes / MiB;
	const { plainDownload: plain, projection, mqtt, coap } = results;
	const wearCells = (wear: Wear) => [wear.preferenceSets, wear.preferenceBytes, wear.flashErases, wear.flashBlockErases, wear.flashWrites, wear.flashBytes].map((n) => int(n / mib));
	const blocks = (n: number) => `${int(n * blockSize)} (${fixed(n)} blocks)`;
	const heapRow = (label: string, one: HeapRun, four: HeapRun, live = true) =>
		[label, int(one.peak), int(one.steady), int(four.peak), int(four.steady), fixed(four.peak / one.peak, 2), fixed(four.steady / one.steady, 2),
			live ? int(Math.max(one.peak, four.peak) - results.heapCode) : "–"];
	return [
		`Run of ${results.date.slice(0, 10)}: ${results.host}, Node ${results.node}, ${fixed(results.seconds, 0)} s in all.`,
		"",
		throughputMarkdown({ imageBytes: results.imageBytes, throughput: results.throughput, httpsThroughput: results.https.throughput,
			mqttThroughput: mqtt.throughput, coapThroughput: coap.throughput, plain }),
		"",
		`**Power cuts and wear** (node engine): ${mib} MiB image, ${cutsPerInterval} seeded cuts per interval at random persistent writes `
			+ "of the download. Re-fetched = bytes fetched by the cut run and the resumed run − image size; the bound is one interval plus "
			+ "the fragment that crossed the last checkpoint, as the checkpoint is saved after that whole fragment is written. "
			+ `Over MQTT the cuts follow test/aws-update.test.ts: one board takes ${mqttCuts} power-ons in a row, `
			+ `each cut after 1 to ${maxCutOps} persistent writes (seeded), then one uncut; a cut's re-fetched blocks are those its `
			+ "power-on fetched less those its record kept. Writes per MiB, over the whole uncut update.",
		"",
		table(["transport, checkpoint", "re-fetched per cut, bytes: mean", "max", "preference sets", "preference bytes", "4 KiB erases", "64 KiB erases", "flash writes", "flash bytes"], [
			...results.intervals.map((r) => [`HTTP, ${r.checkpointBytes / KiB} KiB`, int(r.refetched.mean), int(r.refetched.max), ...wearCells(r.wear)]),
			...formats.map((format) => {
				const r = mqtt.cuts[format];
				return [`MQTT ${format.toUpperCase()}, ${r.checkpointBytes / KiB} KiB`, blocks(r.refetched.mean), blocks(r.refetched.max), ...wearCells(r.wear)];
			}),
		]),
		"",
		"**XS heap slots** (xsnap `currentHeapCount`; a slot is 32 B on x86-64, 16 B on ESP32) after each command from the board (live: one event each; metered: the events queued behind the first ride along). Steady: "
			+ "median over the second half of the download. Metered: as XS reports it, garbage included, as XS collects only when its "
			+ "256 K-slot heap is full. Live: with `gc()` before each reading (a bench-only engine option). Peak: over the whole "
			+ "update, both boots. HTTPS: the simulated board does TLS in Node, so its row shows what the agent adds (credentials "
			+ "read per connection), not the TLS stack itself: Moddable's SecureSocket runs in XS on the device and needs, by "
			+ "its documentation, about 6 KB of slot heap and 10 KB of chunk heap free during a handshake (README: Security). "
			+ `Above the code: the peak less the ${int(results.heapCode)} live slots the firmware's code holds once loaded, before `
			+ "the agent is built (xsnap preloads nothing; the device build keeps the code in flash): the agent's own objects.",
		"",
		table(["", "1 MiB: peak", "steady", "4 MiB: peak", "steady", "4 MiB ÷ 1 MiB: peak", "steady", "peak above the code"], [
			...heapKinds.map((kind) => heapRow(`HTTP, ${kind}`, heap[kind]["1MiB"], heap[kind]["4MiB"], kind === "live")),
			heapRow("HTTPS, live", httpsHeap["1MiB"], httpsHeap["4MiB"]),
			...formats.map((format) => heapRow(`MQTT ${format.toUpperCase()}, live`, mqttHeap[format]["1MiB"], mqttHeap[format]["4MiB"])),
			...coapModes.map((mode) => heapRow(`${describe({ transport: "coap", mode })}, live`, coapHeap[mode]["1MiB"], coapHeap[mode]["4MiB"])),
		]),
		"",
		deltaMarkdown(results.delta, results.heapCode),
		`**Projected on a real board**: ${mib} MiB, W25Q32JV typical / max (4 KiB sector erase ${ms(projection.datasheet.sectorEraseMs)} ms, `
			+ `64 KiB block erase ${ms(projection.datasheet.blockEraseMs)} ms, 256 B page program ${ms(projection.datasheet.pageProgramMs)} ms), `
			+ "applied to the erases and page programs the simulated chip counted during the uncut update (node engine), "
			+ "preference traffic included. Download, erase and program run one after another on one core, so the time is their "
			+ "sum; max(link, flash) is what full overlap would give. Verification reads and hashing are left out.",
		"",
		table(["flash work", "4 KiB erases", "64 KiB erases", "page programs", "seconds", "÷ block-erase floor"], [
			...projection.measured.map((row) => flashRow(`measured: ${row.label}`, row)),
			flashRow("floor: the image alone, sector erase", projection.sectorFloor),
			flashRow("floor: the image alone, block erase", projection.blockFloor),
		]),
		"",
		table(["link (Wi-Fi, effective)", "download s", "update s (sum)", "max(link, flash)", "sum at the block-erase floor"],
			projection.links.map((link) => [`${link.mbps} Mbit/s`, fixed(link.linkSeconds), span(link.sum), span(link.overlap), span(link.sumBlockFloor)])),
		"",
	].join("\n");
}

/** Heap slots against MiB downloaded, metered and live, for both image sizes; plain SVG, no dependencies. */
function renderHeapSvg(heap: HeapResults, mqttHeap: MqttHeapResults): string {
	const width = 640, height = 320, left = 56, right = 16, top = 28, bottom = 40;
	const plotWidth = width - left - right, plotHeight = height - top - bottom;
	// The legend goes under the plot, HTTP in the left column and MQTT in the right: inside, it hid the sawtooth.
	const legendRows = heapKinds.length * heapSizes.length, svgHeight = height + 8 + 14 * legendRows;
	const highest = Math.max(...heapKinds.flatMap((kind) => heapSizes.map((size) => heap[kind][size].peak)),
		...formats.flatMap((format) => heapSizes.map((size) => mqttHeap[format][size].peak)));
	const yStep = 50000, yMax = Math.ceil(highest / yStep) * yStep, xMax = 4;
	const x = (mib: number) => left + (mib / xMax) * plotWidth;
	const y = (slots: number) => top + plotHeight - (slots / yMax) * plotHeight;
	const colours = { "1MiB": "#1f77b4", "4MiB": "#ff7f0e" };
	const parts = [
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${svgHeight}" viewBox="0 0 ${width} ${svgHeight}" font-family="sans-serif" font-size="11">`,
		`<rect width="${width}" height="${svgHeight}" fill="white"/>`,
		`<text x="${left}" y="16" font-size="13">XS heap slots during the download (xs engine, after each event)</text>`,
	];
	for (let slots = 0; slots <= yMax; slots += yStep) {
		parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(slots)}" y2="${y(slots)}" stroke="#ddd"/>`);
		parts.push(`<text x="${left - 6}" y="${y(slots) + 4}" text-anchor="end">${slots ? `${slots / 1000}K` : 0}</text>`);
	}
	for (let mib = 0; mib <= xMax; mib++) parts.push(`<text x="${x(mib)}" y="${top + plotHeight + 16}" text-anchor="middle">${mib}</text>`);
	parts.push(`<text x="${left + plotWidth / 2}" y="${height - 6}" text-anchor="middle">MiB downloaded</text>`);
	parts.push(`<polyline fill="none" stroke="#333" points="${left},${top} ${left},${top + plotHeight} ${width - right},${top + plotHeight}"/>`);
	const legend: string[] = [];
	let entries = 0;
	// One min-to-max stroke per pixel column keeps the file small and the sawtooth visible.
	const line = (samples: HeapSample[], stroke: string) => {
		const columns = new Map<number, [number, number]>();
		for (const { received, slots } of samples) {
			const column = Math.round(x(received / MiB));
			const range = columns.get(column);
			columns.set(column, range ? [Math.min(range[0], slots), Math.max(range[1], slots)] : [slots, slots]);
		}
		const points = [...columns].flatMap(([column, [low, high]]) => [`${column},${y(low).toFixed(1)}`, `${column},${y(high).toFixed(1)}`]);
		parts.push(`<polyline fill="none" ${stroke} points="${points.join(" ")}"/>`);
	};
	const entry = (stroke: string, text: string) => {
		const legendX = entries < legendRows ? left - 40 : 320, ly = height + 4 + 14 * (entries++ % legendRows);
		legend.push(`<line x1="${legendX + 4}" x2="${legendX + 28}" y1="${ly}" y2="${ly}" ${stroke}/>`);
		legend.push(`<text x="${legendX + 34}" y="${ly + 4}">${text}</text>`);
	};
	for (const kind of heapKinds) {
		// The 1 MiB line on top: the two overlap wherever both exist.
		for (const size of ["4MiB", "1MiB"] as const) {
			const stroke = `stroke="${colours[size]}" stroke-width="${kind === "live" ? 2.5 : 1}"${kind === "live" ? "" : ` stroke-dasharray="4 2"`}`;
			line(heap[kind][size].samples, stroke);
			entry(stroke, `HTTP, ${size.replace("MiB", " MiB")} image, ${kind}: steady ${heap[kind][size].steady.toLocaleString("en-US")}`);
		}
	}
	// MQTT, live only: one colour per stream format, both image sizes (they overlap).
	const mqttColours = { json: "#2ca02c", cbor: "#9467bd" };
	for (const format of formats) {
		const stroke = `stroke="${mqttColours[format]}" stroke-width="2" stroke-dasharray="2 3"`;
		for (const size of ["4MiB", "1MiB"] as const) line(mqttHeap[format][size].samples, stroke);
		const steady = heapSizes.map((size) => mqttHeap[format][size].steady.toLocaleString("en-US")).join(" / ");
		entry(stroke, `MQTT ${format.toUpperCase()}, live, 1 / 4 MiB: steady ${steady}`);
	}
	parts.push(...legend, "</svg>");
	return parts.join("\n") + "\n";
}
