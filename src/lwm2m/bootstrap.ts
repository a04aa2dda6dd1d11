/*
	Client-initiated Bootstrap (LwM2M 1.1 Core §6.1, Transport §6.4.1): a Bootstrap-Server provisions the
	LwM2M server account (Objects 0 and 1) this client then registers with.

	  idle ─start→ resolving ─address→ requesting: POST /bs?ep=NAME&pct=110
	  requesting ─2.04→ provisioning            ─4.xx, 5.xx, no answer→ waiting (doubling) → requesting
	  requesting / provisioning: the Bootstrap-Server's requests change a staged copy of the provisioning only:
	    PUT /0[/i[/r]], /1[/i[/r]]   Bootstrap-Write: creates or updates instances, 2.04; 4.00 for any other
	                                 object, an unknown or executable resource, a bad value, a security mode
	                                 other than NoSec (with the reason as diagnostic payload); 4.13 for Block1
	    DELETE /, /0, /1, /0/i, /1/i Bootstrap-Delete, 2.02; the Bootstrap-Server account stays (deleting it
	                                 by its instance is 4.00), as do Objects 3 and 5 (4.00)
	    GET / or /N, Accept 40       Bootstrap-Discover: </>;lwm2m=1.1, then every instance (ssid and uri
	                                 of a server account)
	    GET /1[/i]                   Bootstrap-Read of Object 1; any other object 4.01
	    POST /bs                     Bootstrap-Finish: the staged provisioning is checked (provisioning.ts),
	                                 committed in one preference value, then 2.04 → idle, `finished`;
	                                 inconsistent: 4.06 with the reason, the committed one unchanged (the
	                                 server may correct it and finish again)
	  provisioning ─no request within timeoutMs→ staged dropped → waiting → requesting
	  any ─stop→ idle
	Nothing is written to the store before Finish: a power cut during bootstrap leaves the committed provisioning
	as it was, and the next boot starts over.
*/

import type { CoapEndpoint, CoapReply, CoapRequest, Peer } from "../coap/endpoint";
import { Code, ContentFormat, type Message, Option, codeName, firstOption, stringBytes, stringOptions, uintOption } from "../coap/message";
import type { Clock, Logger, UdpOpener } from "../platform/ports";
import { contentFormat, decodeEntries, encodeEntries, preferredFormat, supportedFormat } from "./content-format";
import { type Entry, Kind, type KindCode, type Lwm2mObject, type Value, coerce, parsePath } from "./model";
import { type ProvisionedServer, type Provisioning, ProvisioningStore, type SecurityAccount, check, type ServerAccount, maxInstances, maxUriLength, noSec, nosecOnly } from "./provisioning";
import { parseServerUri, queryOptions } from "./registration";
import { ServerExchange, doublingDelay } from "./server-exchange";

export interface BootstrapPorts {
	coap: CoapEndpoint;
	udp: UdpOpener;
	clock: Clock;
	log: Logger;
}

export interface BootstrapOptions {
	endpoint: string;
	/** The factory Bootstrap-Server account (config.bootstrap): coap://host[:port]. */
	uri: string;
	retryBaseMs: number;
	retryMaxMs: number;
	/** How long the client waits for the Bootstrap-Server's next request before it asks again. */
	timeoutMs: number;
}

export interface BootstrapListener {
	/** The Bootstrap-Server finished and its provisioning is committed: register with `server`. */
	finished(server: ProvisionedServer): void;
}

type Phase = "idle" | "resolving" | "requesting" | "provisioning" | "waiting";

/** Resources of Objects 0 and 1 (LwM2M 1.1 registry) a Bootstrap-Write may carry; `none`: executable. */
const kinds: { [object: number]: { [resource: number]: KindCode } } = {
	0: {
		0: Kind.string, 1: Kind.boolean, 2: Kind.integer, 3: Kind.opaque, 4: Kind.opaque, 5: Kind.opaque, 6: Kind.integer, 7: Kind.opaque,
		8: Kind.opaque, 9: Kind.string, 10: Kind.integer, 11: Kind.integer, 12: Kind.integer, 13: Kind.unsigned, 14: Kind.string, 15: Kind.unsigned, 17: Kind.objlnk,
	},
	1: {
		0: Kind.integer, 1: Kind.integer, 2: Kind.integer, 3: Kind.integer, 4: Kind.none, 5: Kind.integer, 6: Kind.boolean, 7: Kind.string, 8: Kind.none, 9: Kind.none,
		10: Kind.objlnk, 11: Kind.unsigned, 12: Kind.time, 13: Kind.unsigned, 14: Kind.unsigned, 15: Kind.boolean, 16: Kind.boolean, 17: Kind.unsigned,
		18: Kind.unsigned, 19: Kind.unsigned, 20: Kind.unsigned, 21: Kind.boolean, 22: Kind.string, 23: Kind.boolean,
	},
};

export class Bootstrap {
	#ports: BootstrapPorts;
	#options: BootstrapOptions;
	#objects: readonly Lwm2mObject[];
	#listener: BootstrapListener;
	#store: ProvisioningStore;
	#committed: Provisioning | undefined;
	#bootstrapUri: string;
	#staged: Provisioning = { security: [], servers: [] };
	#phase: Phase = "idle";
	#peer: Peer | undefined;
	#exchange: ServerExchange;
	#failures = 0;

	constructor(ports: BootstrapPorts, store: ProvisioningStore, options: BootstrapOptions, objects: readonly Lwm2mObject[], listener: BootstrapListener) {
		this.#ports = ports;
		this.#exchange = new ServerExchange(ports.clock);
		this.#store = store;
		this.#options = options;
		this.#objects = objects;
		this.#listener = listener;
		this.#bootstrapUri = options.uri;
	}

	/** The committed provisioning's server, or undefined (none, or unreadable: the client bootstraps). */
	load(): ProvisionedServer | undefined {
		const loaded = this.#store.load();
		this.#committed = loaded?.provisioning;
		this.#bootstrapUri = loaded?.server.bootstrapUri ?? this.#options.uri;
		return loaded?.server;
	}

	get active(): boolean {
		return this.#phase !== "idle";
	}

	/** Whether a request from `peer` belongs to the bootstrap under way. */
	accepts(peer: Peer): boolean {
		const bs = this.#peer;
		return (this.#phase === "requesting" || this.#phase === "provisioning") && !!bs && bs.address === peer.address && bs.port === peer.port;
	}

	start(): void {
		if (this.#phase !== "idle") return;
		const server = parseServerUri(this.#bootstrapUri);
		if (!server) return this.#ports.log(`lwm2m bootstrap off: ${this.#bootstrapUri} is not coap://host[:port]`);
		this.#phase = "resolving";
		this.#ports.udp.resolve(server.host, (address) => {
			if (this.#phase !== "resolving") return;
			if (!address) return this.#retry(`cannot resolve ${server.host}`);
			this.#peer = { address, port: server.port };
			this.#request();
		});
	}

	stop(): void {
		this.#exchange.halt();
		this.#phase = "idle";
	}

	/** A request of the Bootstrap-Server (accepts(peer) said so). */
	request(request: CoapRequest): CoapReply {
		this.#armTimeout();
		const message = request.message, segments = stringOptions(message, Option.uriPath);
		if (segments.length === 1 && segments[0] === "bs") return request.method === Code.post ? this.#finish() : { code: Code.methodNotAllowed };
		const path = parsePath(segments);
		if (!path) return { code: Code.badRequest };
		if (firstOption(message, Option.block1)) return { code: Code.requestEntityTooLarge };
		switch (request.method) {
			case Code.put: return this.#write(message, path);
			case Code.delete: return { code: this.#delete(path) };
			case Code.get: return uintOption(message, Option.accept) === ContentFormat.linkFormat ? this.#discover(path) : this.#read(message, path);
			default: return { code: Code.methodNotAllowed };
		}
	}

	#request(): void {
		const { coap, log } = this.#ports;
		this.#phase = "requesting";
		this.#staged = copy(this.#committed ?? { security: [{ id: 0, uri: this.#options.uri, bootstrap: true, mode: noSec }], servers: [] });
		log(`lwm2m bootstrap request to ${this.#bootstrapUri}`);
		const options = [{ number: Option.uriPath, value: stringBytes("bs") }, ...queryOptions([`ep=${this.#options.endpoint}`, `pct=${preferredFormat}`])];
		this.#exchange.sent(coap.request(this.#peer!, Code.post, options, undefined, true, (response, error) => {
			this.#exchange.answered();
			if (!response) return this.#retry(`bootstrap-server did not answer: ${error}`);
			if (response.code !== Code.changed) return this.#retry(`bootstrap refused: ${codeName(response.code)}`);
			if (this.#phase === "requesting") this.#phase = "provisioning";
		}));
		this.#armTimeout();
	}

	#armTimeout(): void {
		this.#exchange.after(this.#options.timeoutMs, () => this.#retry("bootstrap-server went silent before finishing"));
	}

	#retry(reason: string): void {
		this.#exchange.halt();
		const delay = doublingDelay(this.#options, ++this.#failures);
		this.#ports.log(`${reason}; bootstrap again in ${delay} ms`);
		this.#phase = "waiting";
		this.#exchange.after(delay, () => {
			if (this.#phase !== "waiting") return;
			if (this.#peer) return this.#request();
			this.#phase = "idle";
			this.start();
		});
	}

	#finish(): CoapReply {
		const { log } = this.#ports;
		const staged = this.#staged, server = checkAndKeep(this.#store, staged);
		if (typeof server === "string") {
			log(`lwm2m bootstrap-finish refused: ${server}`);
			return { code: Code.notAcceptable, payload: stringBytes(server) };
		}
		this.#exchange.halt();
		this.#phase = "idle";
		this.#failures = 0;
		this.#committed = staged;
		this.#bootstrapUri = server.bootstrapUri ?? this.#options.uri;
		log(`lwm2m bootstrap finished: server ${server.uri}, short server id ${server.ssid}`);
		// The 2.04 leaves first; the registration it leads to starts a moment later.
		this.#exchange.after(0, () => this.#listener.finished(server));
		return { code: Code.changed };
	}

	/** Bootstrap-Write: every value is checked before any is applied to the staged provisioning. */
	#write(message: Message, path: number[]): CoapReply {
		const object = path[0], table = kinds[object];
		if (!table || path.length > 3) return refused("bootstrap writes instances and resources of objects 0 and 1");
		const format = uintOption(message, Option.contentFormat) ?? ContentFormat.text;
		if (!supportedFormat(format)) return { code: Code.unsupportedContentFormat };
		const written = decodeEntries(format, message.payload, path, path.length > 2 ? table[path[2]] : undefined);
		if (typeof written === "string") return refused(written);
		const changes: { instance: number; resource: number; value: Value }[] = [];
		for (const entry of written) {
			const [entryObject, instance, resource] = entry.path;
			if (entry.path.length !== 3 || entryObject !== object || path.some((id, i) => entry.path[i] !== id)) return refused(`${entry.path.join("/")} is out of place`);
			const kind = table[resource];
			if (kind === undefined || kind === Kind.none) return refused(`/${object}/${instance}/${resource} cannot be written`);
			const value = coerce(kind, entry);
			if (value === undefined) return refused(`bad value for /${object}/${instance}/${resource}`);
			const problem = object === 0 ? securityProblem(resource, value) : serverProblem(resource, value);
			if (problem) return refused(problem);
			changes.push({ instance, resource, value });
		}
		const list: (SecurityAccount | ServerAccount)[] = object === 0 ? this.#staged.security : this.#staged.servers;
		const created = new Set(changes.map((change) => change.instance).filter((id) => !list.some((item) => item.id === id)));
		if (list.length + created.size > maxInstances) return refused(`at most ${maxInstances} instances of object ${object}`);
		for (const { instance, resource, value } of changes) {
			let item = list.find((candidate) => candidate.id === instance);
			if (!item) list.push((item = { id: instance }));
			if (object === 0) applySecurity(item as SecurityAccount, resource, value);
			else applyServer(item as ServerAccount, resource, value);
		}
		return { code: Code.changed };
	}

	/** Bootstrap-Delete: "/" and Object 0 keep the Bootstrap-Server account; Objects 3 and 5 stay. */
	#delete(path: number[]): number {
		const staged = this.#staged, object = path[0];
		if (path.length > 2 || (path.length && object !== 0 && object !== 1)) return Code.badRequest;
		const keep = (account: SecurityAccount) => !!account.bootstrap;
		if (path.length === 2) {
			if (object === 1) staged.servers = staged.servers.filter((server) => server.id !== path[1]);
			else if (staged.security.some((account) => account.id === path[1] && keep(account))) return Code.badRequest;
			else staged.security = staged.security.filter((account) => account.id !== path[1]);
			return Code.deleted;
		}
		if (object !== 1) staged.security = staged.security.filter(keep);
		if (object !== 0) staged.servers = [];
		return Code.deleted;
	}

	/** Bootstrap-Discover of "/" or one object. */
	#discover(path: number[]): CoapReply {
		if (path.length > 1) return { code: Code.badRequest };
		const links: string[] = [];
		if (!path.length) links.push('</>;lwm2m="1.1"');
		const list = (object: number, instances: readonly { id: number; ssid?: number; uri?: string }[]) => {
			if (path.length && path[0] !== object) return;
			if (!instances.length) links.push(`</${object}>`);
			for (const { id, ssid, uri } of instances)
				links.push(`</${object}/${id}>${ssid !== undefined ? `;ssid=${ssid}` : ""}${uri !== undefined ? `;uri="${uri}"` : ""}`);
		};
		list(0, this.#staged.security.map(({ id, ssid, uri, bootstrap }) => (bootstrap ? { id } : { id, ssid, uri })));
		list(1, this.#staged.servers.map(({ id, ssid }) => ({ id, ssid })));
		for (const object of this.#objects)
			if (object.id > 1) list(object.id, object.instances().map((id) => ({ id })));
		if (links.length === 0) return { code: Code.notFound };
		return { code: Code.content, options: [contentFormat(ContentFormat.linkFormat)], payload: stringBytes(links.join(",")) };
	}

	/** Bootstrap-Read: Object 1 only (Core §6.1.7.8); the Security object and the others are 4.01. */
	#read(message: Message, path: number[]): CoapReply {
		if (path[0] !== 1) return { code: Code.unauthorized };
		if (path.length > 2) return { code: Code.badRequest };
		const servers = this.#staged.servers.filter((server) => path.length < 2 || server.id === path[1]);
		if (path.length === 2 && !servers.length) return { code: Code.notFound };
		const entries: Entry[] = [];
		for (const server of servers) {
			const add = (resource: number, kind: KindCode, value: Value | undefined) => value !== undefined && entries.push({ path: [1, server.id, resource], kind, value });
			add(0, Kind.integer, server.ssid);
			add(1, Kind.integer, server.lifetime);
			add(2, Kind.integer, server.pmin);
			add(3, Kind.integer, server.pmax);
			add(7, Kind.string, server.binding);
			add(16, Kind.boolean, server.bootstrapOnFailure);
			add(17, Kind.unsigned, server.retries);
		}
		const format = uintOption(message, Option.accept) ?? preferredFormat;
		const payload = supportedFormat(format) ? encodeEntries(format, entries, path) : undefined;
		if (!payload) return { code: Code.notAcceptable };
		return { code: Code.content, options: [contentFormat(format)], payload };
	}
}

/** The server a staged provisioning names, once committed; or why Finish refuses it. */
function checkAndKeep(store: ProvisioningStore, staged: Provisioning): ProvisionedServer | string {
	const server = check(staged);
	return typeof server === "string" ? server : store.commit(staged) ?? server;
}

function securityProblem(resource: number, value: Value): string | undefined {
	if (resource === 0 && (value as string).length > maxUriLength) return `server uri longer than ${maxUriLength}`;
	if (resource === 2 && value !== noSec) return `security mode ${value}: ${nosecOnly}`;
	if (resource === 10 && !validShortServerId(value)) return `short server id ${value} is not 1 to 65534`;
	return undefined;
}

function serverProblem(resource: number, value: Value): string | undefined {
	if (resource === 0 && !validShortServerId(value)) return `short server id ${value} is not 1 to 65534`;
	if (typeof value === "number" && (value < 0 || value > 0x7fffffff)) return `value ${value} of /1/x/${resource} out of range`;
	return undefined;
}

function validShortServerId(value: Value): boolean {
	return typeof value === "number" && value >= 1 && value <= 65534;
}

/** The resources this client uses; the others a Bootstrap-Server may write configure what it does not do. */
function applySecurity(account: SecurityAccount, resource: number, value: Value): void {
	if (resource === 0) account.uri = value as string;
	else if (resource === 1) account.bootstrap = value as boolean;
	else if (resource === 2) account.mode = value as number;
	else if (resource === 10) account.ssid = value as number;
}

function applyServer(server: ServerAccount, resource: number, value: Value): void {
	if (resource === 0) server.ssid = value as number;
	else if (resource === 1) server.lifetime = value as number;
	else if (resource === 2) server.pmin = value as number;
	else if (resource === 3) server.pmax = value as number;
	else if (resource === 7) server.binding = value as string;
	else if (resource === 16) server.bootstrapOnFailure = value as boolean;
	else if (resource === 17) server.retries = value as number;
}

function copy(provisioning: Provisioning): Provisioning {
	return { security: provisioning.security.map((account) => ({ ...account })), servers: provisioning.servers.map((server) => ({ ...server })) };
}

function refused(reason: string): CoapReply {
	return { code: Code.badRequest, payload: stringBytes(reason) };
}
