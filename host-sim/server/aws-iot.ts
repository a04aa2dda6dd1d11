/*
	An AWS IoT Jobs + MQTT file streams emulator for firmware updates: an aedes broker in this process
	(or an external broker such as mosquitto, joined as a client), the Jobs and Streams device APIs behind it,
	job creation with a stream holding the image, and seeded network faults on what the service publishes.

	Job creation is also offered over MQTT, for a command line in another process:
	  xs-ota/emulator/jobs/create {requestId, thing, form, image (base64) | imagePath, …CreateJobOptions}
	  → xs-ota/emulator/jobs/create/accepted {requestId, jobId, streamId, fileId, fileSize, document}
	  | xs-ota/emulator/jobs/create/rejected {requestId, message}
	A board's flush request (host-sim/board/mqtt-network.ts, Settling) is answered in order with everything else:
	  xs-ota/emulator/flush/CLIENT n → xs-ota/emulator/flushed/CLIENT n
*/

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { readAppDescription } from "../image";
import { JobsService, type JobExecution } from "./aws-jobs";
import { checkStreamIds, StreamsService, type StreamFaults, type StreamFormat, type StreamStats } from "./aws-streams";
import { externalLink, startAedes, type AedesBroker, type BrokerLink } from "./mqtt-broker";
import { MqttLink } from "./mqtt-link";
import type { ServerTls } from "./server-tls";
import { seeded } from "../random";
import { flushTopics } from "../board/mqtt-network";

export const controlTopics = {
	create: "xs-ota/emulator/jobs/create",
	accepted: "xs-ota/emulator/jobs/create/accepted",
	rejected: "xs-ota/emulator/jobs/create/rejected",
};

/** Faults on the service's own messages, read afresh for each message; a seeded generator draws them. */
export interface MqttFaults {
	/** Probability that a message is never sent. */
	dropRate?: number;
	/** Probability that a message is sent twice. */
	duplicateRate?: number;
	/** Probability (true: 1) that a message is held back and sent right after the next one. */
	reorder?: boolean | number;
	/** Latency added to every message, in real milliseconds (order is kept). */
	delayMs?: number;
	/** Only messages on matching topics suffer; all of the service's messages otherwise. */
	topics?: RegExp;
	/** Seed of the fault generator (default 1); changing it restarts the sequence. */
	seed?: number;
}

export interface AwsIotStats extends StreamStats {
	/** Messages the service handed to the broker, duplicates included. */
	published: number;
	dropped: number;
	duplicated: number;
	reordered: number;
}

export interface AwsIotOptions {
	/** "aedes" (default): a broker in this process on 127.0.0.1; or an external broker's mqtt:// url. */
	broker?: "aedes" | { url: string };
	/** Port for the aedes listener; default: any free one. */
	port?: number;
	/** The aedes listener speaks MQTT over TLS only, as AWS IoT Core does (client certificates with clientCaPem). */
	tls?: ServerTls;
	faults?: MqttFaults & StreamFaults;
	/** Stream errors as {o, m, c} (default, as documented) or the older {code, message, clientToken}. */
	streamErrorFields?: "short" | "long";
}

export interface CreateJobOptions {
	jobId?: string;
	/** The image, or the path of a file holding it. */
	image: Uint8Array | string;
	form: "afr_ota" | "fota";
	/** fota only: written into the document as streamFormat. */
	streamFormat?: StreamFormat;
	/** fota only: written into the document as blockSize. */
	blockSize?: number;
	fileId?: number;
	streamId?: string;
	/** fota's imageVer; default: the version in the image's app description. */
	version?: string;
	/** afr_ota's sig-sha256-ecdsa, base64; left out when not given. */
	signature?: string;
	/** afr_ota's filepath; default: the image file's name, or "firmware.bin". */
	filePath?: string;
	/** afr_ota's certfile; default "ota-signer.crt" when a signature is given. */
	certFile?: string;
	/** Top-level fields added to the document as given: recoveryPolicy, severity, maxDeferSeconds. */
	handling?: { [key: string]: unknown };
}

export interface CreatedJob {
	jobId: string;
	streamId: string;
	fileId: number;
	fileSize: number;
	document: unknown;
	execution: JobExecution;
}

export interface AwsIot {
	url: string;
	port: number;
	createJob(thing: string, options: CreateJobOptions): CreatedJob;
	/** Cloud-side end of a pending execution. */
	endJob(thing: string, jobId: string, status?: "CANCELED" | "TIMED_OUT" | "REMOVED"): void;
	jobs: JobsService;
	streams: StreamsService;
	executions(thing: string): JobExecution[];
	stats: AwsIotStats;
	faults: MqttFaults & StreamFaults & { restartBroker(): Promise<void> };
	/** aedes only: drops every client by closing and reopening the listener on the same port. */
	restartBroker(): Promise<void>;
	/** Resolves once every message the service has queued so far is with the broker. */
	settled(): Promise<void>;
	/** aedes with TLS and ALPN only: the protocols clients were accepted with. */
	alpnSeen(): string[];
	close(): Promise<void>;
}

const flushPrefix = flushTopics.request("");

const serviceFilters = [
	"$aws/things/+/jobs/get",
	"$aws/things/+/jobs/start-next",
	"$aws/things/+/jobs/+/get",
	"$aws/things/+/jobs/+/update",
	"$aws/things/+/streams/+/get/+",
	"$aws/things/+/streams/+/describe/+",
];

export async function startAwsIot(options: AwsIotOptions = {}): Promise<AwsIot> {
	let aedes: AedesBroker | undefined;
	let link: BrokerLink, url: string;
	if (options.broker === undefined || options.broker === "aedes") {
		aedes = await startAedes({ port: options.port, tls: options.tls });
		link = aedes.link;
		url = aedes.url;
	}
	else {
		url = options.broker.url;
		link = await externalLink(url, `xs-ota-aws-iot-${randomBytes(4).toString("hex")}`);
	}
	const port = Number(/:(\d+)\/?$/.exec(url)?.[1] ?? 1883);
	const restartBroker = async () => {
		if (!aedes) throw new Error("restart needs the aedes broker");
		await aedes.restart();
	};
	const faults = Object.assign(options.faults ?? {}, { restartBroker });
	const outbox = new Outbox(link, faults);
	const jobs = new JobsService((topic, body) => outbox.send(topic, Buffer.from(JSON.stringify(body))));
	const streams = new StreamsService((topic, payload) => outbox.send(topic, payload), faults);
	streams.errorFields = options.streamErrorFields ?? "short";
	const stats = Object.assign(streams.stats, outbox.stats) as AwsIotStats;
	outbox.stats = stats;
	let jobCount = 0;

	const createJob = (thing: string, spec: CreateJobOptions): CreatedJob => {
		const image = typeof spec.image === "string" ? new Uint8Array(readFileSync(spec.image)) : spec.image;
		const number = ++jobCount;
		const jobId = spec.jobId ?? unusedJobId(number);
		const streamId = spec.streamId ?? `stream-${number}`;
		const fileId = spec.fileId ?? 0;
		checkStreamIds(streamId, [fileId]);
		const document = jobDocument(spec, image, streamId, fileId);
		const execution = jobs.create(thing, jobId, document);
		streams.put(streamId, new Map([[fileId, image]]), `firmware for ${jobId}`);
		return { jobId, streamId, fileId, fileSize: image.length, document, execution };
	};

	const unusedJobId = (number: number): string => {
		const used = new Set([...jobs.things.values()].flat().map((execution) => execution.jobId));
		while (used.has(`job-${number}`)) number++;
		return `job-${number}`;
	};

	link.onMessage = (topic, payload) => {
		try {
			if (topic === controlTopics.create) return control(payload);
			if (topic.startsWith(flushPrefix)) return outbox.pass(flushTopics.answer(topic.slice(flushPrefix.length)), payload);
			if (!jobs.handle(topic, payload)) streams.handle(topic, payload);
		}
		catch (error) {
			console.error(`aws-iot emulator: ${topic}: ${(error as Error).message}`);
		}
	};
	const control = (payload: Buffer) => {
		let request: any;
		try {
			request = JSON.parse(payload.toString("utf8"));
			const image = typeof request.image === "string" ? new Uint8Array(Buffer.from(request.image, "base64")) : request.imagePath;
			if (!image) throw new Error("the request needs image or imagePath");
			if (request.form !== "afr_ota" && request.form !== "fota") throw new Error("form is afr_ota or fota");
			if (typeof request.thing !== "string" || !request.thing) throw new Error("the request needs a thing");
			const created = createJob(request.thing, { ...request, image });
			const { execution: _, ...reply } = created;
			void link.publish(controlTopics.accepted, Buffer.from(JSON.stringify({ requestId: request.requestId, ...reply })));
		}
		catch (error) {
			void link.publish(controlTopics.rejected, Buffer.from(JSON.stringify({ requestId: request?.requestId, message: (error as Error).message })));
		}
	};
	await link.subscribe([...serviceFilters, controlTopics.create, flushTopics.requestFilter]);

	let closing: Promise<void> | undefined;
	return {
		url,
		port,
		createJob,
		endJob: (thing, jobId, status) => jobs.end(thing, jobId, status),
		jobs,
		streams,
		executions: (thing) => jobs.executions(thing),
		stats,
		faults,
		restartBroker,
		settled: () => outbox.settled(),
		alpnSeen: () => aedes?.alpnSeen() ?? [],
		close: () => (closing ??= (async () => {
			outbox.stop();
			await link.close();
			await aedes?.close();
		})()),
	};
}

/** The job document of a firmware job in either form (also what `xs-ota fleet` deploys). */
export function jobDocument(spec: CreateJobOptions, image: Uint8Array, streamId: string, fileId: number): unknown {
	return { ...formDocument(spec, image, streamId, fileId), ...spec.handling };
}

function formDocument(spec: CreateJobOptions, image: Uint8Array, streamId: string, fileId: number): { [key: string]: unknown } {
	if (spec.form === "fota") {
		const version = spec.version ?? readAppDescription(image.subarray(0, 512))?.version ?? "";
		const document: { [key: string]: unknown } = {
			command: "fota", streamId, fileId, fileSize: image.length, imageVer: version,
			md5sum: createHash("md5").update(image).digest("hex"),
		};
		if (spec.streamFormat) document.streamFormat = spec.streamFormat;
		if (spec.blockSize) document.blockSize = spec.blockSize;
		return document;
	}
	const file: { [key: string]: unknown } = {
		filepath: spec.filePath ?? (typeof spec.image === "string" ? basename(spec.image) : "firmware.bin"),
		filesize: image.length,
		fileid: fileId,
	};
	if (spec.signature !== undefined) {
		file.certfile = spec.certFile ?? "ota-signer.crt";
		file["sig-sha256-ecdsa"] = spec.signature;
	}
	return { afr_ota: { protocols: ["MQTT"], streamname: streamId, files: [file] } };
}

/** The service's publishing queue: faults decided in message order, then a strictly ordered hand-over. */
class Outbox {
	stats = { published: 0, dropped: 0, duplicated: 0, reordered: 0 };
	#link: BrokerLink;
	#faults: MqttFaults;
	#chain: Promise<void> = Promise.resolve();
	#random: () => number = () => 0;
	#seed: number | undefined;
	#held: { topic: string; payload: Uint8Array; copies: number } | undefined;
	#heldTimer: NodeJS.Timeout | undefined;
	#stopped = false;

	constructor(link: BrokerLink, faults: MqttFaults) {
		this.#link = link;
		this.#faults = faults;
	}

	send(topic: string, payload: Uint8Array): void {
		const faults = this.#faults;
		if (faults.topics && !faults.topics.test(topic)) return this.#emit(topic, payload, 1, 0);
		const seed = faults.seed ?? 1;
		if (seed !== this.#seed) {
			this.#seed = seed;
			this.#random = seeded(seed);
		}
		// Always three draws, so one fault's setting never shifts another's sequence.
		const drop = this.#random(), duplicate = this.#random(), reorder = this.#random();
		if (drop < (faults.dropRate ?? 0)) {
			this.stats.dropped++;
			return;
		}
		const copies = duplicate < (faults.duplicateRate ?? 0) ? 2 : 1;
		if (copies === 2) this.stats.duplicated++;
		const reorderRate = faults.reorder === true ? 1 : faults.reorder || 0;
		if (!this.#held && reorder < reorderRate) {
			this.stats.reordered++;
			this.#held = { topic, payload, copies };
			// Nothing may come after it: then it goes out alone, a little late.
			this.#heldTimer = setTimeout(() => this.#release(), Math.max(50, faults.delayMs ?? 0));
			return;
		}
		this.#emit(topic, payload, copies, faults.delayMs ?? 0);
		this.#release();
	}

	/** Out in order after everything sent before it, untouched by faults (a board's flush answer). */
	pass(topic: string, payload: Uint8Array): void {
		this.#emit(topic, payload, 1, 0);
	}

	settled(): Promise<void> {
		return this.#held ? new Promise((done) => setTimeout(done, 10)).then(() => this.settled()) : this.#chain;
	}

	stop(): void {
		this.#stopped = true;
		clearTimeout(this.#heldTimer);
		this.#held = undefined;
	}

	#release(): void {
		const held = this.#held;
		if (!held) return;
		clearTimeout(this.#heldTimer);
		this.#held = undefined;
		this.#emit(held.topic, held.payload, held.copies, this.#faults.delayMs ?? 0);
	}

	/** Hands the message over after everything before it, and at least `delayMs` real ms from now. */
	#emit(topic: string, payload: Uint8Array, copies: number, delayMs: number): void {
		const due = Date.now() + delayMs;
		const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
		this.#chain = this.#chain.then(async () => {
			const wait = due - Date.now();
			if (wait > 0) await new Promise((done) => setTimeout(done, wait));
			for (let i = 0; i < copies && !this.#stopped; i++) {
				this.stats.published++;
				await this.#link.publish(topic, bytes);
			}
		}).catch(() => {}); // a broker gone mid-publish loses the message, as QoS 0 does
	}
}


export type JobRequest = Omit<CreateJobOptions, "image"> & { thing: string; image?: Uint8Array; imagePath?: string };

/** Creates a job through a running emulator's control topic, from another process. */
export async function requestJob(url: string, request: JobRequest, timeoutMs = 10_000): Promise<Omit<CreatedJob, "execution">> {
	const link = await MqttLink.connect({ url, clientId: `xs-ota-cli-${randomBytes(4).toString("hex")}`, connectTimeoutMs: timeoutMs });
	try {
		const requestId = randomBytes(8).toString("hex");
		const answer = new Promise<{ topic: string; body: any }>((done) => {
			link.onMessage = (topic, payload) => {
				try {
					const body = JSON.parse(payload.toString("utf8"));
					if (body.requestId === requestId) done({ topic, body });
				}
				catch { /* not ours */ }
			};
		});
		await link.subscribe([controlTopics.accepted, controlTopics.rejected]);
		const { image, ...rest } = request;
		await link.publish(controlTopics.create, JSON.stringify({ ...rest, requestId, ...(image ? { image: Buffer.from(image).toString("base64") } : {}) }));
		let timer: NodeJS.Timeout | undefined;
		const deadline = new Promise<never>((_, fail) => { timer = setTimeout(() => fail(new Error(`no answer from the emulator at ${url}`)), timeoutMs); });
		try {
			const { topic, body } = await Promise.race([answer, deadline]);
			if (topic === controlTopics.rejected) throw new Error(body.message ?? "job refused");
			const { requestId: _, ...created } = body;
			return created;
		}
		finally {
			clearTimeout(timer);
		}
	}
	finally {
		await link.close();
	}
}
