/*
	The LwM2M 1.1 client: serves Objects 0, 1, 3 and 5 to one server over CoAP, registers with it
	(registration.ts) and keeps its observations (observations.ts). With a Bootstrap-Server (bootstrap.ts) the
	server is the one it provisioned: the client bootstraps when it has no server account, and when
	registration failed the Communication Retry Count of times in a row (Core §6.2.1.1; 5 by default).

	Server requests (Core §6.3–6.4, Transport §6.4):
	  GET                       Read, in the Accept format (4.06 when it cannot carry the value)
	  GET Accept link-format    Discover: the object's or instance's resources and their attributes
	  GET Observe 0 / 1         Observe (first answer carries Observe) / cancel it (answered 2.05)
	  PUT with a payload        Write (replace) of an instance or resource; /5/0/0 by Block1 is the push
	  PUT with a query only     Write-Attributes (pmin pmax gt lt st; a name without value clears it)
	  POST on a resource        Execute (payload: its arguments)   POST on an instance: Write (partial update)
	  DELETE, POST on an object, FETCH, iPATCH   4.05: the objects have one fixed instance
	  POST on a resource instance                 4.05 (no Execute there); any other request to one that
	                                              does not exist (a single resource has none) 4.04
	Object 0 is the client's own: 4.01 to the server. A write checks every value before it applies any.
	A PUT or POST in Block1 parts (other than the Package, written part by part) runs once its body is whole:
	2.31 until then, 4.08 for a part out of sequence, 4.13 with Size1 past maxGatheredBytes.

	The final Update Result of an update counts as acknowledged once the server took it: an acknowledged
	notification of a path that holds /5/0/5, or its read.

	With queueWaitMs the client registers in Queue Mode (queue-mode.ts): it stops listening between exchanges,
	a notification wakes it through a Registration Update, and a Package push under way keeps it listening.
*/

import type { CoapEndpoint, CoapReply, CoapRequest, Peer } from "../coap/endpoint";
import { maxUriBytes } from "../agent/record";
import { Block1Assembly, block2Reply, defaultSzx } from "../coap/block";
import { Code, ContentFormat, type CoapOption, type Message, Option, bytesString, firstOption, parseBlock, stringBytes, stringOptions, uintBytes, uintOption } from "../coap/message";
import type { Clock, KeyValueStore, Logger, UdpOpener } from "../platform/ports";
import { answerFormat, contentFormat, decodeEntries, encodeEntries, supportedFormat } from "./content-format";
import type { ServerSettings } from "./device-objects";
import type { FirmwareUpdateObject } from "./firmware-update";
import { type Lwm2mObject, coerce, entriesAt, formatPath, parsePath, readable, resourceDef, writable } from "./model";
import { type Attributes, type Observation, Observations, type Snapshot } from "./observations";
import { packageFormat } from "./package-reader";
import { Bootstrap } from "./bootstrap";
import { type ProvisionedServer, ProvisioningStore, defaultRetries } from "./provisioning";
import { QueueMode } from "./queue-mode";
import { Registration, type RegistrationOptions } from "./registration";
import { Session } from "./session";

export interface Lwm2mPorts {
	coap: CoapEndpoint;
	udp: UdpOpener;
	clock: Clock;
	store: KeyValueStore;
	log: Logger;
}

export interface Lwm2mListener {
	/** The server took the final result of update `updateId`. */
	acknowledged(updateId: number): void;
}

const securityObjectId = 0;
const updateResultPath = [5, 0, 5];
/**
	The largest body gathered from Block1 parts: a Package URI of the most the agent takes (2048 bytes,
	record.ts) with room for a TLV or SenML wrapping. Anything longer is 4.13.
*/
const maxGatheredBytes = maxUriBytes + 256;
/** A Block1 body whose next part does not come within this is dropped. */
const assemblySilenceMs = 60000;

export class Lwm2mClient {
	#ports: Lwm2mPorts;
	#objects: Lwm2mObject[];
	#firmware: FirmwareUpdateObject;
	#registration: Registration;
	#observations: Observations;
	#queue: QueueMode | undefined;
	#session: Session;
	#listener: Lwm2mListener;
	#pendingResult: number | undefined;
	#whenRegistered: (() => void)[] = [];
	#assembly = new Block1Assembly(maxGatheredBytes);
	#assemblyTimer: unknown;
	/** Observations came back from the session at boot: the first registration notifies them all. */
	#afterBoot = false;
	#maxSzx: number;
	#settings: ServerSettings;
	#bootstrap: Bootstrap | undefined;
	#failuresBeforeBootstrap = defaultRetries;

	constructor(ports: Lwm2mPorts, objects: Lwm2mObject[], firmware: FirmwareUpdateObject, settings: ServerSettings,
		options: Omit<RegistrationOptions, "queueMode"> & { maxMessageBytes: number; queueWaitMs: number; bootstrap?: { uri: string; timeoutMs: number } }, listener: Lwm2mListener) {
		this.#ports = ports;
		this.#settings = settings;
		this.#objects = objects;
		this.#firmware = firmware;
		this.#listener = listener;
		this.#maxSzx = defaultSzx(options.maxMessageBytes);
		const session = new Session(ports.store, ports.log);
		this.#session = session;
		if (options.queueWaitMs > 0) this.#queue = new QueueMode(ports, options.queueWaitMs, { busy: () => firmware.pushing });
		this.#observations = new Observations(ports, session, {
			snapshot: (path, format) => this.#snapshot(path, format),
			notify: (observation, snapshot, delivered) => this.#notify(observation, snapshot, delivered),
			defaults: () => ({ pmin: settings.minPeriod, pmax: settings.maxPeriod }),
			connected: () => this.#registration.registered && (this.#queue?.announced ?? true),
			wake: () => this.#queue && !this.#queue.announced && this.#registration.update(),
		});
		this.#registration = new Registration(ports, session, settings, { ...options, queueMode: this.#queue !== undefined }, () => this.#links(), {
			registered: (fresh) => {
				if (this.#queue) this.#queue.announced = true;
				if (fresh) this.#observations.forget();
				this.#observations.resume(this.#afterBoot);
				this.#afterBoot = false;
				const waiting = this.#whenRegistered;
				this.#whenRegistered = [];
				for (const callback of waiting) callback();
			},
			unregistered: () => {},
			failed: (failures) => this.#registrationFailed(failures),
		});
		if (options.bootstrap) {
			this.#bootstrap = new Bootstrap(ports, new ProvisioningStore(ports.store, ports.log), { ...options, ...options.bootstrap }, objects, {
				finished: (server) => {
					this.#provisioned(server);
					this.#registration.start();
				},
			});
		}
		ports.coap.onReset = (peer, token) => this.#observations.cancel(peer, token);
	}

	get registered(): boolean {
		return this.#registration.registered;
	}

	get observations(): readonly Observation[] {
		return this.#observations.list;
	}

	start(): void {
		this.#session.load();
		this.#observations.restore();
		this.#afterBoot = true;
		const provisioned = this.#bootstrap?.load();
		if (provisioned) this.#provisioned(provisioned);
		this.#queue?.start();
		if (this.#settings.serverUri) this.#registration.start();
		else this.#bootstrap?.start();
	}

	/**
		Ends the client; `done` once it sends nothing more. `deregister` on an orderly power-off; a reboot
		keeps the registration and observations for the next boot (Registration Update, then notifications).
	*/
	stop(deregister: boolean, done?: () => void): void {
		this.#ports.clock.clearTimeout(this.#assemblyTimer);
		this.#assembly.reset();
		this.#queue?.stop();
		this.#observations.close();
		this.#bootstrap?.stop();
		this.#registration.stop(deregister, done);
	}

	/** The default self-test of an image an LwM2M server sent: the new firmware registers with it again. */
	selfTest = (done: (passed: boolean, reason?: string) => void): void => {
		if (this.#registration.registered) return done(true);
		this.#whenRegistered.push(() => done(true));
	};

	/** Resources at or below `path` may have changed (State, Update Result, …): notify their observers. */
	changed(path: readonly number[]): void {
		this.#observations.changed(path);
	}

	/** Settings of Object 1 changed: the registration follows (lifetime) and observations re-arm (periods). */
	settingsChanged(): void {
		this.#registration.update();
	}

	/** Registration Update Trigger (Object 1, resource 8). */
	updateRegistration(): void {
		this.#registration.update();
	}

	/** The final result of update `updateId` waits for the server: observers hear it, and it counts once they acknowledge. */
	reportResult(updateId: number): void {
		this.#pendingResult = updateId;
		// Sent even when an observer already heard the value: only an acknowledged notification proves delivery.
		this.#observations.changed(updateResultPath, true);
	}

	// The endpoint's handler: one request from the server.
	request(request: CoapRequest, reply: (response: CoapReply) => void): void {
		if (this.#bootstrap?.accepts(request.peer)) return reply(this.#bootstrap.request(request));
		const message = request.message;
		const path = parsePath(stringOptions(message, Option.uriPath));
		if (!path) return reply({ code: Code.badRequest });
		if (path[0] === securityObjectId) return reply({ code: Code.unauthorized });
		const object = this.#object(path[0]);
		if (path.length && !object) return reply({ code: Code.notFound });
		const block1 = firstOption(message, Option.block1);
		// The Package takes its Block1 parts one by one (#writePackage); any other body is used only whole.
		if (block1 && (request.method === Code.put || request.method === Code.post) && !isPackage(path))
			return reply(this.#gather(request, path, object, block1));
		reply(this.#handle(request.method, request.peer, message, path, object));
	}

	/** The server a Bootstrap-Server provisioned: Objects 0 and 1 show it, the registration goes to it. */
	#provisioned(server: ProvisionedServer): void {
		const settings = this.#settings;
		settings.serverUri = server.uri;
		settings.shortServerId = server.ssid;
		settings.lifetime = server.lifetime ?? settings.lifetime;
		settings.minPeriod = server.pmin ?? settings.minPeriod;
		settings.maxPeriod = server.pmax ?? settings.maxPeriod;
		this.#failuresBeforeBootstrap = server.failuresBeforeBootstrap;
	}

	/** Registration failed `failures` times in a row: at the retry count, the Bootstrap-Server is asked again. */
	#registrationFailed(failures: number): boolean {
		if (!this.#bootstrap || !this.#failuresBeforeBootstrap || failures < this.#failuresBeforeBootstrap) return false;
		this.#bootstrap.start();
		return true;
	}

	#handle(method: number, peer: Peer, message: Message, path: number[], object: Lwm2mObject | undefined): CoapReply {
		switch (method) {
			case Code.get: return this.#get(peer, message, path, object);
			case Code.put: return this.#put(message, path, object);
			case Code.post: return this.#post(message, path, object);
			default: return { code: Code.methodNotAllowed };
		}
	}

	/** One Block1 part of a write or Execute: 2.31 until the body is whole, then the request runs with it (RFC 7959 §2.3). */
	#gather(request: CoapRequest, path: number[], object: Lwm2mObject | undefined, option: Uint8Array): CoapReply {
		const message = request.message, block = parseBlock(option);
		if (!block) return { code: Code.badOption };
		const { clock } = this.#ports, assembly = this.#assembly;
		const key = `${request.peer.address}:${request.peer.port} ${request.method} ${formatPath(path)}`;
		const body = assembly.part(key, block, message.payload, uintOption(message, Option.size1));
		clock.clearTimeout(this.#assemblyTimer);
		const echo: CoapOption = { number: Option.block1, value: option };
		if (body === Code.continue) {
			// A server that stops sending mid-body does not keep the buffer.
			this.#assemblyTimer = clock.setTimeout(() => assembly.reset(), assemblySilenceMs);
			return { code: body, options: [echo] };
		}
		if (body === Code.requestEntityTooLarge) return { code: body, options: [{ number: Option.size1, value: uintBytes(assembly.limit) }] };
		if (typeof body === "number") return { code: body };
		const answer = this.#handle(request.method, request.peer, { ...message, payload: body }, path, object);
		return { ...answer, options: (answer.options ?? []).concat(echo) };
	}

	#object(id: number | undefined): Lwm2mObject | undefined {
		return this.#objects.find((object) => object.id === id);
	}

	/**
		4.04 for an instance, resource or resource instance this object does not have; undefined when the path
		exists. Only a multiple resource has resource instances: /3/0/0/9 does not exist.
	*/
	#missing(path: readonly number[], object: Lwm2mObject): number | undefined {
		if (path.length > 1 && object.instances().indexOf(path[1]) < 0) return Code.notFound;
		const def = path.length > 2 ? resourceDef(object, path[2]) : undefined;
		if (path.length > 2 && !def) return Code.notFound;
		if (path.length > 3) {
			const values = def!.multiple ? object.read(path[1], def!.id) as readonly unknown[] | undefined : undefined;
			if (!values || path[3] >= values.length) return Code.notFound;
		}
		return undefined;
	}

	#get(peer: Peer, message: Message, path: number[], object: Lwm2mObject | undefined): CoapReply {
		if (!object) return { code: Code.methodNotAllowed };
		const missing = this.#missing(path, object);
		if (missing) return { code: missing };
		const accept = uintOption(message, Option.accept);
		if (accept === ContentFormat.linkFormat) return { code: Code.content, options: [contentFormat(ContentFormat.linkFormat)], payload: stringBytes(this.#discover(path, object)) };
		const def = path.length > 2 ? resourceDef(object, path[2])! : undefined;
		if (def && !readable(def)) return { code: Code.methodNotAllowed };
		if (accept !== undefined && !supportedFormat(accept)) return { code: Code.notAcceptable };
		const observe = uintOption(message, Option.observe);
		const format = answerFormat(accept, entriesAt(object, path), path.length >= 3 && !def?.multiple);
		const snapshot = this.#snapshot(path, format);
		if (snapshot.code !== Code.content) return { code: snapshot.code };
		const options = [contentFormat(format)];
		if (observe === 0) {
			const sequence = this.#observations.add(peer, message.token, path, format, snapshot);
			options.unshift({ number: Option.observe, value: uintBytes(sequence) });
		}
		else if (observe === 1) this.#observations.cancel(peer, message.token);
		if (covers(path, updateResultPath)) this.#resultTaken();
		const asked = firstOption(message, Option.block2), requested = asked ? parseBlock(asked) : undefined;
		const block = asked && !requested ? undefined : block2Reply(snapshot.payload, requested, this.#maxSzx);
		if (!block) return { code: Code.badOption };
		return { code: Code.content, options: options.concat(block.options), payload: block.payload };
	}

	#snapshot(path: readonly number[], format: number): Snapshot {
		const object = this.#object(path[0])!;
		const entries = entriesAt(object, path);
		const payload = encodeEntries(format, entries, path);
		if (!payload) return { code: Code.notAcceptable, payload: empty, number: undefined };
		const numeric = entries.length === 1 && path.length >= 3 && typeof entries[0].value === "number" ? entries[0].value : undefined;
		return { code: Code.content, payload, number: numeric };
	}

	#notify(observation: Observation, snapshot: Snapshot, delivered: (ok: boolean) => void): void {
		const carriesResult = this.#pendingResult !== undefined && covers(observation.path, updateResultPath);
		const options = [contentFormat(observation.format)];
		this.#ports.coap.notify(observation.peer, observation.token, observation.sequence, { code: snapshot.code, options, payload: snapshot.payload }, true, (ok) => {
			if (ok && carriesResult) this.#resultTaken();
			delivered(ok);
		});
	}

	#resultTaken(): void {
		const updateId = this.#pendingResult;
		if (updateId === undefined) return;
		this.#pendingResult = undefined;
		this.#listener.acknowledged(updateId);
	}

	#discover(path: readonly number[], object: Lwm2mObject): string {
		const links: string[] = [];
		const link = (target: readonly number[], extra = "") => {
			const attributes = this.#observations.attributesOn(target);
			let text = `<${formatPath(target)}>${extra}`;
			if (attributes) for (const name of Object.keys(attributes)) text += `;${name}=${attributes[name as keyof Attributes]}`;
			links.push(text);
		};
		if (path.length === 1) link(path, object.version !== "1.0" ? `;ver=${object.version}` : "");
		for (const instance of path.length > 1 ? [path[1]] : object.instances()) {
			if (path.length <= 2) link([object.id, instance]);
			for (const def of object.resources) {
				if (path.length > 2 && def.id !== path[2]) continue;
				const count = def.multiple ? (object.read(instance, def.id) as readonly unknown[] | undefined)?.length ?? 0 : 0;
				link([object.id, instance, def.id], def.multiple ? `;dim=${count}` : "");
			}
		}
		return links.join(",");
	}

	#put(message: Message, path: number[], object: Lwm2mObject | undefined): CoapReply {
		if (!object || path.length < 2) return { code: Code.methodNotAllowed };
		const missing = this.#missing(path, object);
		if (missing) return { code: missing };
		const queries = stringOptions(message, Option.uriQuery);
		if (queries.length && !message.payload.length && firstOption(message, Option.contentFormat) === undefined)
			return { code: this.#writeAttributes(path, queries) };
		return this.#write(message, path, object);
	}

	#post(message: Message, path: number[], object: Lwm2mObject | undefined): CoapReply {
		// Core's operations table gives POST on a resource instance no meaning (Execute targets a resource,
		// partial Write an instance): 4.05, whether or not that resource instance exists.
		if (!object || path.length < 2 || path.length > 3) return { code: Code.methodNotAllowed };
		const missing = this.#missing(path, object);
		if (missing) return { code: missing };
		if (path.length === 2) return this.#write(message, path, object);
		const def = resourceDef(object, path[2])!;
		if (def.operations !== "E") return { code: Code.methodNotAllowed };
		const code = object.execute(path[1], path[2], bytesString(message.payload));
		return { code };
	}

	#write(message: Message, path: number[], object: Lwm2mObject): CoapReply {
		const format = uintOption(message, Option.contentFormat) ?? ContentFormat.text;
		if (!supportedFormat(format)) return { code: Code.unsupportedContentFormat };
		if (isPackage(path)) return this.#writePackage(message, format);
		const target = path.length > 2 ? resourceDef(object, path[2]) : undefined;
		const written = decodeEntries(format, message.payload, path, target?.kind);
		if (typeof written === "string") return { code: Code.badRequest, payload: stringBytes(written) };
		if (!written.length) return { code: Code.badRequest };
		// Everything is checked before anything is applied: a write is whole or not at all.
		const values = [];
		for (const entry of written) {
			if (!covers(path, entry.path) || entry.path[0] !== object.id || entry.path[1] !== path[1] || entry.path.length > 3) return { code: Code.badRequest };
			const def = resourceDef(object, entry.path[2]);
			if (!def) return { code: Code.notFound };
			if (!writable(def)) return { code: Code.methodNotAllowed };
			const value = coerce(def.kind, entry);
			if (value === undefined) return { code: Code.badRequest };
			values.push({ resource: def.id, value });
		}
		for (const { resource, value } of values) {
			const code = object.write(path[1], resource, value);
			if (code !== Code.changed) return { code };
		}
		return { code: Code.changed };
	}

	/** Package (/5/0/0), in Block1 parts or one message, in any format of an Opaque resource; each part goes to the slot as it comes. */
	#writePackage(message: Message, format: number): CoapReply {
		if (!packageFormat(format)) return { code: Code.unsupportedContentFormat };
		const option = firstOption(message, Option.block1);
		const block = option ? parseBlock(option) : { num: 0, more: false, szx: 6 };
		if (!block) return { code: Code.badOption };
		const code = this.#firmware.writePackage(block, message.payload, uintOption(message, Option.size1) ?? 0, format);
		if (!option) return { code };
		return { code, options: [{ number: Option.block1, value: option }] };
	}

	#writeAttributes(path: readonly number[], queries: readonly string[]): number {
		const changes: Attributes = {};
		for (const query of queries) {
			const match = /^(pmin|pmax|gt|lt|st)(?:=(-?\d+(?:\.\d+)?))?$/.exec(query);
			if (!match) return Code.badRequest;
			const name = match[1] as keyof Attributes;
			const value = match[2] === undefined ? undefined : Number(match[2]);
			if ((name === "pmin" || name === "pmax") && value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) return Code.badRequest;
			if ((name === "gt" || name === "lt" || name === "st") && path.length < 3) return Code.badRequest;
			if (name === "st" && value !== undefined && value <= 0) return Code.badRequest;
			changes[name] = value;
		}
		return this.#observations.setAttributes(path, changes) ? Code.changed : Code.badRequest;
	}

	#links(): string {
		const links = ['</>;rt="oma.lwm2m";ct=110'];
		for (const object of this.#objects) {
			if (object.id === securityObjectId) continue;
			if (object.version !== "1.0") links.push(`</${object.id}>;ver=${object.version}`);
			for (const instance of object.instances()) links.push(`</${object.id}/${instance}>`);
		}
		return links.join(",");
	}
}

const empty = new Uint8Array(0);

/** Whether `inner` lies at or below `outer`. */
function covers(outer: readonly number[], inner: readonly number[]): boolean {
	if (inner.length < outer.length) return false;
	for (let i = 0; i < outer.length; i++)
		if (outer[i] !== inner[i]) return false;
	return true;
}

function isPackage(path: readonly number[]): boolean {
	return path.length === 3 && path[0] === 5 && path[1] === 0 && path[2] === 0;
}
