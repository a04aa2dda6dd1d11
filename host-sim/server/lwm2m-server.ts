// A local LwM2M 1.1 server over CoAP/UDP for demos and tests, on the npm `coap` library: NoSec (coap://), or
// with a pre-shared key (coaps://, Security Mode 0) behind host-sim's own DTLS server (dtls-server.ts).
//
// Registration interface (OMA-TS-LightweightM2M_Core-V1_1 §6.2, Transport §6.4):
//   POST /rd?ep=NAME&lt=S&lwm2m=1.1&b=U  (link-format objects) → 2.01, Location-Path rd/<id>
//   POST /rd/<id>[?lt=S&b=U]  (maybe new objects)              → 2.04, or 4.04 for an unknown id
//   DELETE /rd/<id>                                             → 2.02, or 4.04
// A new registration of an endpoint replaces its old one (and ends its observations); a registration that
// is not updated within its lifetime (plus a short grace) is dropped.
//
// Queue Mode (Q in the Register, or b=UQ): the client is awake for awakeTimeMs (MAX_TRANSMIT_WAIT, 93 s)
// after each message the server hears from it (Register, Update, a notification, a response), then asleep.
// Requests for a sleeping client wait in its queue (Leshan refuses them instead) and go out in order, one
// after the other's answer, as soon as the client is heard again; "awake" and "sleep" are emitted.
//
// Device management requests go out as CON from the very socket the server listens on, to the address and
// port the registration came from: the client behind a NAT or a firewall only accepts that peer. The
// library allows it with one dgram socket shared by a coap Server (which ignores responses) and a coap
// Agent built on that socket (which ignores requests); the Agent also does Block2 reassembly, Block1
// segmentation, Observe streams and the ACKs of CON notifications.

import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import * as dgram from "node:dgram";
import { Agent, createServer, parameters, type IncomingMessage, type ObserveReadStream, type OutgoingMessage, type Server } from "coap";
import { contentFormats, decode, encode, formatOf, linkFormat, parsePath, type Lwm2mFormat, type Lwm2mValue } from "./lwm2m-formats";
import { uintOption } from "./coap-option";
import { DtlsServer, onlyIdentity, type Psk } from "./dtls-server";

export type { Lwm2mFormat, Lwm2mValue } from "./lwm2m-formats";

export interface Registration {
	endpoint: string;
	location: string;
	lifetime: number;
	binding: string;
	lwm2mVersion: string;
	objectLinks: string;
	address: string;
	port: number;
	registeredAt: number;
	updatedAt: number;
	updates: number;
	queueMode: boolean;
	/** Queue Mode: heard within awakeTimeMs (always true otherwise). */
	awake: boolean;
}

export type Notification = { value: Lwm2mValue; sequence: number; at: number };
export type Observation = { code: string; value?: Lwm2mValue; notifications: Notification[]; cancel(): Promise<void> };

const expiryGraceMs = 2000;
/** RFC 7252's MAX_TRANSMIT_WAIT, the awake time LwM2M Transport §6.5 recommends. */
const defaultAwakeTimeMs = 93000;

type Queued = { request: Request; resolve: (message: IncomingMessage) => void; reject: (error: Error) => void };


/** The library gives a Content-Format as its registered media type name, or as a number for others. */
const mediaTypes: { [name: string]: number } = {
	"text/plain": 0, "text/plain;charset=utf-8": 0, "application/link-format": linkFormat, "application/octet-stream": 42,
	"application/senml+json": 110, "application/senml+cbor": 112, "application/vnd.oma.lwm2m+tlv": 11542,
};

function contentFormat(message: IncomingMessage): number | undefined {
	const header = message.headers["Content-Format"] as string | number | undefined;
	return typeof header === "number" ? header : header === undefined ? undefined : mediaTypes[header];
}

/** The options as received, in order (Uri-Path and Uri-Query stay bytes). */
function optionsOf(message: IncomingMessage): { name: string | number; value: unknown }[] {
	return message._packet.options ?? [];
}

export function queryOf(message: IncomingMessage): Map<string, string> {
	const query = new Map<string, string>();
	for (const option of optionsOf(message)) {
		if (option.name !== "Uri-Query") continue;
		const text = String(option.value), equals = text.indexOf("=");
		query.set(equals < 0 ? text : text.slice(0, equals), equals < 0 ? "" : text.slice(equals + 1));
	}
	return query;
}

export function pathOf(message: IncomingMessage): string[] {
	return optionsOf(message).filter((option) => option.name === "Uri-Path").map((option) => String(option.value));
}

export type Request = { method: "GET" | "PUT" | "POST" | "DELETE"; path: string; query?: string; accept?: number; format?: number; payload?: Buffer; observe?: 0 | 1; token?: Buffer; block1?: number };

/** A coap Server answering `handle` and an Agent for requests of our own, both on `socket`, and its address. */
export function serveOn(socket: dgram.Socket, handle: (request: IncomingMessage, response: OutgoingMessage) => void, scheme = "coap"): { port: number; url: string; server: Server; agent: Agent } {
	const address = socket.address(), server = createServer(handle);
	server.listen(socket);
	return { port: address.port, url: `${scheme}://${address.address}:${address.port}`, server, agent: new Agent({ socket }) };
}

/**
	Sends `request` as CON through `agent` to a client at `address`:`port` (named `endpoint` in the log and errors);
	resolves with its response, rejects when none comes within MAX_TRANSMIT_WAIT.
*/
export function sendRequest(agent: Agent, log: (line: string) => void, to: { endpoint: string; address: string; port: number }, request: Request): Promise<IncomingMessage> {
	const { endpoint } = to;
	// Every path names objects, but Bootstrap-Finish's.
	if (request.path !== "/bs") parsePath(request.path);
	const options: { [name: string]: Buffer } = {};
	if (request.accept !== undefined) options.Accept = uintOption(request.accept);
	if (request.format !== undefined) options["Content-Format"] = uintOption(request.format);
	if (request.block1 !== undefined) options.Block1 = Buffer.of(request.block1);
	return new Promise((resolve, reject) => {
		const outgoing: OutgoingMessage = agent.request({
			hostname: to.address, port: to.port, method: request.method, confirmable: true,
			pathname: request.path, query: request.query, observe: request.observe, token: request.token, options,
		});
		// The library's own limit is EXCHANGE_LIFETIME (247 s); a request is lost after MAX_TRANSMIT_WAIT.
		const timer = setTimeout(() => {
			agent.abort(outgoing);
			reject(new Error(`${endpoint} did not answer ${request.method} ${request.path}`));
		}, parameters.maxTransmitWait * 1000);
		// A request the client never answers must not hold the process 93 s after its server closed.
		timer.unref();
		outgoing.on("response", (response: IncomingMessage) => {
			clearTimeout(timer);
			log(`${endpoint} ${request.method} ${request.path}${request.query ? "?" + request.query : ""} → ${response.code}`);
			resolve(response);
		});
		outgoing.on("error", (error: Error) => {
			clearTimeout(timer);
			reject(error);
		});
		outgoing.end(request.payload);
	});
}

export class Lwm2mServer extends EventEmitter {
	readonly port: number;
	readonly url: string;
	/** The DTLS server in front (coaps://), or undefined (coap://). */
	readonly dtls: DtlsServer | undefined;
	readonly #socket: dgram.Socket;
	readonly #server: Server;
	readonly #agent: Agent;
	readonly #log: (line: string) => void;
	readonly #registrations = new Map<string, Registration>();
	readonly #expiry = new Map<string, NodeJS.Timeout>();
	readonly #observations = new Map<string, Set<ObserveReadStream>>();
	readonly #awakeTimeMs: number;
	/** Queue Mode: requests waiting for each sleeping endpoint, the sleep timers, the endpoints being sent their queue. */
	readonly #queues = new Map<string, Queued[]>();
	readonly #sleep = new Map<string, NodeJS.Timeout>();
	readonly #flushing = new Set<string>();

	private constructor(socket: dgram.Socket, log: (line: string) => void, awakeTimeMs: number, dtls?: DtlsServer) {
		super();
		this.#socket = socket;
		this.#log = log;
		this.#awakeTimeMs = awakeTimeMs;
		this.dtls = dtls;
		({ port: this.port, url: this.url, server: this.#server, agent: this.#agent } = serveOn(socket, (request, response) => this.#handle(request, response), dtls ? "coaps" : "coap"));
	}

	/** With `psk`, the server speaks DTLS and takes only that identity with that key. */
	static async start(options: { port?: number; host?: string; log?: (line: string) => void; awakeTimeMs?: number; psk?: Psk } = {}): Promise<Lwm2mServer> {
		const log = options.log ?? (() => {}), psk = options.psk, awakeTimeMs = options.awakeTimeMs ?? defaultAwakeTimeMs;
		if (psk) {
			const dtls = await DtlsServer.start({ port: options.port, host: options.host, log, key: onlyIdentity(psk) });
			return new Lwm2mServer(dtls.socket, log, awakeTimeMs, dtls);
		}
		return new Promise((resolve, reject) => {
			const socket = dgram.createSocket("udp4");
			socket.once("error", reject);
			socket.bind(options.port ?? 0, options.host ?? "127.0.0.1", () => {
				socket.off("error", reject);
				resolve(new Lwm2mServer(socket, log, awakeTimeMs));
			});
		});
	}

	registration(endpoint: string): Registration | undefined {
		return this.#registrations.get(endpoint);
	}

	/** Requests waiting for the endpoint to wake (Queue Mode). */
	queued(endpoint: string): number {
		return this.#queues.get(endpoint)?.length ?? 0;
	}

	/** The endpoint's registration, or the first register or update after `since` (ms since the epoch). */
	waitForRegistration(endpoint: string, timeoutMs: number, since?: number): Promise<Registration> {
		const fresh = (registration: Registration | undefined) => registration?.endpoint === endpoint && (since === undefined || registration.updatedAt > since);
		const current = this.#registrations.get(endpoint);
		if (fresh(current)) return Promise.resolve(current!);
		return new Promise((resolve, reject) => {
			const seen = (registration: Registration) => {
				if (!fresh(registration)) return;
				finish();
				resolve(registration);
			};
			const timer = setTimeout(() => {
				finish();
				reject(new Error(`no registration of ${endpoint} within ${timeoutMs} ms`));
			}, timeoutMs);
			const finish = () => {
				clearTimeout(timer);
				this.off("register", seen);
				this.off("update", seen);
			};
			this.on("register", seen);
			this.on("update", seen);
		});
	}

	async read(endpoint: string, path: string, format?: Lwm2mFormat): Promise<{ code: string; format?: Lwm2mFormat; value?: Lwm2mValue }> {
		const response = await this.#request(endpoint, { method: "GET", path, accept: format && contentFormats[format] });
		return { code: response.code, ...this.#content(response, path) };
	}

	async write(endpoint: string, path: string, value: Lwm2mValue, options: { format?: Lwm2mFormat; partial?: boolean } = {}): Promise<string> {
		const format = options.format ?? (Buffer.isBuffer(value) ? "opaque" : typeof value === "object" ? "tlv" : "text");
		const response = await this.#request(endpoint, { method: options.partial ? "POST" : "PUT", path, format: contentFormats[format], payload: encode(format, path, value) });
		return response.code;
	}

	async execute(endpoint: string, path: string, args?: string): Promise<string> {
		const payload = args === undefined ? undefined : Buffer.from(args);
		return (await this.#request(endpoint, { method: "POST", path, payload, format: payload && contentFormats.text })).code;
	}

	async discover(endpoint: string, path: string): Promise<{ code: string; links: string }> {
		const response = await this.#request(endpoint, { method: "GET", path, accept: linkFormat });
		return { code: response.code, links: response.payload.toString("utf8") };
	}

	async writeAttributes(endpoint: string, path: string, attributes: { pmin?: number; pmax?: number; gt?: number; lt?: number; st?: number }): Promise<string> {
		const query = Object.entries(attributes).filter(([, value]) => value !== undefined).map(([name, value]) => `${name}=${value}`).join("&");
		return (await this.#request(endpoint, { method: "PUT", path, query })).code;
	}

	/** Observe (RFC 7641): notifications fill `notifications` as they come and are emitted as "notify". */
	async observe(endpoint: string, path: string, format?: Lwm2mFormat): Promise<Observation> {
		const token = randomBytes(8);
		const response = await this.#request(endpoint, { method: "GET", path, accept: format && contentFormats[format], observe: 0, token });
		const observation: Observation = { code: response.code, ...this.#content(response, path), notifications: [], cancel: async () => {} };
		const stream = response as ObserveReadStream;
		if (response.code !== "2.05" || response.headers.Observe === undefined) {
			// Not observed after all: release the token the library keeps for the stream.
			if (typeof stream.close === "function") stream.close();
			return observation;
		}
		const streams = this.#observations.get(endpoint) ?? new Set();
		this.#observations.set(endpoint, streams.add(stream));
		let first = true;
		stream.on("data", (payload: Buffer) => {
			// The stream replays the first response before the notifications.
			if (first) return void (first = false);
			try {
				const value = this.#content(stream, path, payload).value!;
				const notification = { value, sequence: Number(stream.headers.Observe), at: Date.now() };
				this.#heard(endpoint);
				observation.notifications.push(notification);
				this.emit("notify", { endpoint, path, value, sequence: notification.sequence });
			}
			catch (error) {
				this.#log(`${endpoint} ${path}: bad notification: ${(error as Error).message}`);
			}
		});
		observation.cancel = async () => {
			if (!streams.delete(stream)) return;
			stream.close();
			// Deregister explicitly (Observe 1, same token); a late notification gets a RST from the Agent.
			await this.#request(endpoint, { method: "GET", path, accept: format && contentFormats[format], observe: 1, token });
		};
		return observation;
	}

	/**
		Writes `bytes` to a resource by Block1 PUTs (RFC 7959), each block sent after the previous 2.31: as they are
		(opaque), or as the value of that resource in TLV or SenML (a Package may be written in any of them).
	*/
	async push(endpoint: string, path: string, bytes: Buffer, options: { blockSize?: number; format?: Lwm2mFormat } = {}): Promise<string> {
		const blockSize = options.blockSize ?? 512, format = options.format ?? "opaque";
		const szx = Math.log2(blockSize) - 4;
		if (!Number.isInteger(szx) || szx < 0 || szx > 6) throw new Error("block size is a power of two from 16 to 1024");
		return (await this.#request(endpoint, { method: "PUT", path, format: contentFormats[format], payload: encode(format, path, bytes), block1: szx })).code;
	}

	close(): Promise<void> {
		for (const timer of this.#expiry.values()) clearTimeout(timer);
		this.#expiry.clear();
		for (const endpoint of [...this.#queues.keys()]) this.#forgetQueue(endpoint, "the server closed");
		for (const endpoint of this.#observations.keys()) this.#forgetObservations(endpoint);
		return new Promise((resolve) => {
			this.#agent.close();
			this.#server.close();
			this.#socket.close(() => resolve());
		});
	}

	#content(message: IncomingMessage, path: string, payload = message.payload): { format?: Lwm2mFormat; value?: Lwm2mValue } {
		const number = contentFormat(message);
		if (number === undefined && !payload.length) return {};
		const format = number === undefined ? "text" : formatOf(number);
		if (!format) throw new Error(`unsupported content format ${number}`);
		return { format, value: decode(format, path, payload) };
	}

	/** Sends the request now, or (Queue Mode, the client asleep or its queue not yet sent) once the client wakes. */
	#request(endpoint: string, request: Request): Promise<IncomingMessage> {
		const registration = this.#registrations.get(endpoint);
		if (!registration) return Promise.reject(new Error(`${endpoint} is not registered`));
		parsePath(request.path);
		const queue = this.#queues.get(endpoint);
		if (registration.awake && !queue?.length) return this.#send(registration, request);
		return new Promise((resolve, reject) => {
			this.#queues.set(endpoint, [...(queue ?? []), { request, resolve, reject }]);
			this.#log(`${endpoint} asleep: ${request.method} ${request.path} queued`);
			if (registration.awake) void this.#flush(endpoint);
		});
	}

	#send(registration: Registration, request: Request): Promise<IncomingMessage> {
		return sendRequest(this.#agent, this.#log, registration, request).then((response) => {
			this.#heard(registration.endpoint);
			return response;
		});
	}

	#handle(request: IncomingMessage, response: OutgoingMessage): void {
		const path = pathOf(request);
		const reply = (code: string) => {
			response.code = code;
			response.end();
		};
		if (path[0] !== "rd" || path.length > 2) return reply("4.04");
		if (path.length === 1) return request.method === "POST" ? this.#register(request, response) : reply("4.05");
		const endpoint = [...this.#registrations.values()].find((registration) => registration.location === `/rd/${path[1]}`)?.endpoint;
		if (request.method !== "POST" && request.method !== "DELETE") return reply("4.05");
		if (endpoint === undefined) return reply("4.04");
		if (request.method === "DELETE") {
			this.#drop(endpoint, "deregistered");
			return reply("2.02");
		}
		const registration = this.#registrations.get(endpoint)!;
		const query = queryOf(request);
		if (query.has("lt")) registration.lifetime = Number(query.get("lt"));
		if (query.has("b")) registration.binding = query.get("b")!;
		if (request.payload.length) registration.objectLinks = request.payload.toString("utf8");
		registration.address = request.rsinfo.address;
		registration.port = request.rsinfo.port;
		registration.updatedAt = Date.now();
		registration.updates++;
		this.#arm(registration);
		this.#log(`${endpoint} updated ${registration.location} lifetime ${registration.lifetime} s`);
		reply("2.04");
		this.emit("update", registration);
		this.#heard(endpoint);
	}

	#register(request: IncomingMessage, response: OutgoingMessage): void {
		const query = queryOf(request);
		const endpoint = query.get("ep"), lifetime = Number(query.get("lt") ?? 86400);
		if (!endpoint || !Number.isInteger(lifetime) || lifetime <= 0) {
			response.code = "4.00";
			return void response.end();
		}
		if (this.#registrations.has(endpoint)) this.#drop(endpoint, "registered again");
		const id = randomBytes(4).toString("hex"), now = Date.now();
		const registration: Registration = {
			endpoint, location: `/rd/${id}`, lifetime, binding: query.get("b") ?? "U", lwm2mVersion: query.get("lwm2m") ?? "1.0",
			objectLinks: request.payload.toString("utf8"), address: request.rsinfo.address, port: request.rsinfo.port,
			registeredAt: now, updatedAt: now, updates: 0, queueMode: query.has("Q") || /Q/.test(query.get("b") ?? ""), awake: true,
		};
		this.#registrations.set(endpoint, registration);
		this.#arm(registration);
		this.#log(`${endpoint} registered at ${registration.location} from ${registration.address}:${registration.port}, lifetime ${lifetime} s, lwm2m ${registration.lwm2mVersion}, ${registration.objectLinks}`);
		response.code = "2.01";
		response.setOption("Location-Path", [Buffer.from("rd"), Buffer.from(id)]);
		response.end();
		this.emit("register", registration);
		this.#heard(endpoint);
	}

	/** A message came from the endpoint: a Queue Mode client is awake for awakeTimeMs, and gets its queue. */
	#heard(endpoint: string): void {
		const registration = this.#registrations.get(endpoint);
		if (!registration?.queueMode) return;
		clearTimeout(this.#sleep.get(endpoint));
		this.#sleep.set(endpoint, setTimeout(() => {
			this.#sleep.delete(endpoint);
			registration.awake = false;
			this.#log(`${endpoint} asleep`);
			this.emit("sleep", registration);
		}, this.#awakeTimeMs).unref());
		if (!registration.awake) {
			registration.awake = true;
			this.emit("awake", registration);
		}
		void this.#flush(endpoint);
	}

	/** Sends the queued requests in order, each after the previous one's answer, while the client stays awake. */
	async #flush(endpoint: string): Promise<void> {
		if (this.#flushing.has(endpoint)) return;
		this.#flushing.add(endpoint);
		try {
			for (;;) {
				const registration = this.#registrations.get(endpoint), queue = this.#queues.get(endpoint);
				if (!registration?.awake || !queue?.length) return;
				const { request, resolve, reject } = queue.shift()!;
				await this.#send(registration, request).then(resolve, reject);
			}
		}
		finally {
			this.#flushing.delete(endpoint);
		}
	}

	#forgetQueue(endpoint: string, why: string): void {
		clearTimeout(this.#sleep.get(endpoint));
		this.#sleep.delete(endpoint);
		for (const { reject } of this.#queues.get(endpoint) ?? []) reject(new Error(`${endpoint}: ${why}`));
		this.#queues.delete(endpoint);
	}

	#arm(registration: Registration): void {
		clearTimeout(this.#expiry.get(registration.endpoint));
		const timer = setTimeout(() => this.#drop(registration.endpoint, "expired"), registration.lifetime * 1000 + expiryGraceMs);
		timer.unref();
		this.#expiry.set(registration.endpoint, timer);
	}

	#drop(endpoint: string, why: string): void {
		const registration = this.#registrations.get(endpoint)!;
		this.#registrations.delete(endpoint);
		clearTimeout(this.#expiry.get(endpoint));
		this.#expiry.delete(endpoint);
		this.#forgetObservations(endpoint);
		this.#forgetQueue(endpoint, why);
		this.#log(`${endpoint} ${why} (${registration.location})`);
		this.emit("deregister", registration);
	}

	/** Ends the endpoint's observations here, without a word to a client that has gone or started afresh. */
	#forgetObservations(endpoint: string): void {
		const streams = this.#observations.get(endpoint);
		for (const stream of streams ?? []) stream.close();
		streams?.clear();
		this.#observations.delete(endpoint);
	}
}
