/*
	Observations (RFC 7641) of LwM2M paths, with the notification attributes of LwM2M Core §5.1.2:
	  pmin  no notification sooner than pmin seconds after the last one (a change waits for it)
	  pmax  a notification at least every pmax seconds, changed or not (0: never)
	  gt lt a numeric resource notifies when its value crosses one of these thresholds
	  st    a numeric resource notifies when it moved by at least st since the last notification
	A change without gt/lt/st notifies when the representation differs from the one last sent.
	Attributes come from the most specific path that has them (resource, instance, object), then from the
	Server object's default periods.

	Notifications are confirmable: an ACK proves delivery (the final Update Result is acknowledged that way),
	a RST or silence drops the observation. Observations and attributes are kept in the session (session.ts:
	peer, token, path, format, sequence), so after a power cut the client updates its registration and
	notifies every observation with the current value; the sequence number jumps past anything sent before the
	cut (a server would drop an older one).
*/

import { hexDecode, hexEncode } from "../lib/base64";
import { sameBytes } from "../coap/message";
import type { Peer } from "../coap/endpoint";
import type { Clock, Logger } from "../platform/ports";
import { formatPath } from "./model";
import type { SavedObservation, Session, SessionData } from "./session";

export interface Attributes {
	pmin?: number;
	pmax?: number;
	gt?: number;
	lt?: number;
	st?: number;
}

export interface Observation {
	peer: Peer;
	token: Uint8Array;
	path: number[];
	format: number;
	sequence: number;
	/** Ticks of the last notification (or of the answer that started the observation). */
	sentAt: number;
	lastPayload: Uint8Array | undefined;
	/** The numeric value last sent, for gt/lt/st. */
	lastNumber: number | undefined;
	timer: unknown;
	sending: boolean;
	/** A change came while a notification was in flight or pmin held it. */
	pending: boolean;
	/** pmax (or pmin after a held change) ran out while the notification could not go: it goes, changed or not. */
	due: boolean;
}

/** What an observation's path holds now: its representation, and its number when it is one numeric resource. */
export interface Snapshot {
	code: number;
	payload: Uint8Array;
	number: number | undefined;
}

export interface ObservationsHost {
	/** The current representation of `path` in `format`. */
	snapshot(path: readonly number[], format: number): Snapshot;
	/** Sends a notification; `delivered` tells whether the server acknowledged it. */
	notify(observation: Observation, snapshot: Snapshot, delivered: (ok: boolean) => void): void;
	/** The server's default pmin and pmax (Object 1). */
	defaults(): { pmin: number; pmax: number };
	/** Whether notifications may go out now (registered, and in Queue Mode announced on the open socket). */
	connected(): boolean;
	/** A notification waits for connected(): in Queue Mode the client wakes for it. */
	wake(): void;
}

const maxObservations = 8;
const maxAttributePaths = 16;
/** Notifications sent before a cut were fewer than this since the last save: the sequence restarts past them. */
const sequenceJump = 0x10000;

export class Observations {
	#ports: { clock: Clock; log: Logger };
	#session: Session;
	#host: ObservationsHost;
	#list: Observation[] = [];
	#attributes: { [path: string]: Attributes } = {};

	constructor(ports: { clock: Clock; log: Logger }, session: Session, host: ObservationsHost) {
		this.#ports = ports;
		this.#session = session;
		this.#host = host;
	}

	get list(): readonly Observation[] {
		return this.#list;
	}

	/** Starts (or restarts, for the same peer and path or token) an observation; returns its first sequence number. */
	add(peer: Peer, token: Uint8Array, path: number[], format: number, snapshot: Snapshot): number {
		const previous = this.#list.find((o) => (sameBytes(o.token, token) && samePeer(o.peer, peer)) || (samePeer(o.peer, peer) && formatPath(o.path) === formatPath(path)));
		const sequence = previous ? (previous.sequence + 1) & 0xffffff : 0;
		if (previous) this.#remove(previous);
		if (this.#list.length >= maxObservations) this.#remove(this.#list[0]);
		const observation: Observation = {
			peer, token: token.slice(), path, format, sequence, sentAt: this.#ports.clock.ticks(),
			lastPayload: snapshot.payload.slice(), lastNumber: snapshot.number, timer: undefined, sending: false, pending: false, due: false,
		};
		this.#list.push(observation);
		this.#armMaxPeriod(observation);
		this.#save();
		return sequence;
	}

	/** Cancels the observation with this token from this peer (GET with Observe 1, or RST). */
	cancel(peer: Peer, token: Uint8Array): boolean {
		const observation = this.#list.find((o) => sameBytes(o.token, token) && samePeer(o.peer, peer));
		if (!observation) return false;
		this.#remove(observation);
		this.#save();
		return true;
	}

	/** Something at or below `prefix` may have changed: observations that overlap it notify as their attributes allow. */
	changed(prefix: readonly number[], always = false): void {
		for (const observation of this.#list.slice())
			if (overlaps(observation.path, prefix)) this.#consider(observation, always);
	}

	/**
		Registered again or updated. After a boot every observation notifies its current value at once: the
		server missed whatever changed while the device was off. Otherwise (a periodic or triggered update,
		a registration that came back, a Queue Mode wake) only a change held meanwhile goes out, as its
		attributes allow, and a notification that fell due meanwhile (pmax).
	*/
	resume(afterBoot: boolean): void {
		for (const observation of this.#list.slice()) this.#consider(observation, afterBoot || observation.due);
	}

	/** Takes the session's observations and attributes; anything malformed is dropped (the server observes again). */
	restore(): void {
		const { observations, attributes } = this.#session.data;
		for (const item of observations.slice(0, maxObservations)) {
			const observation = restored(item, this.#ports.clock.ticks());
			if (observation) this.#list.push(observation);
		}
		for (const path of Object.keys(attributes).slice(0, maxAttributePaths)) {
			const checked = checkedAttributes(attributes[path]);
			if (checked && /^\/\d{1,5}(\/\d{1,5}){0,2}$/.test(path)) this.#attributes[path] = checked;
		}
		// Saved at once: the sequence numbers have jumped.
		if (this.#list.length) this.#save();
	}

	/** A fresh registration: the server forgot every observation of the earlier one (attributes stay the client's). */
	forget(): void {
		if (!this.#list.length) return;
		for (const observation of this.#list) this.#ports.clock.clearTimeout(observation.timer);
		this.#list.length = 0;
		this.#save();
	}

	/** Write-Attributes on `path`: `changes` set or (undefined values) clear attributes. */
	setAttributes(path: readonly number[], changes: Attributes): boolean {
		const key = formatPath(path);
		const merged: Attributes = { ...this.#attributes[key] };
		for (const name of ["pmin", "pmax", "gt", "lt", "st"] as const) {
			if (!(name in changes)) continue;
			if (changes[name] === undefined) delete merged[name];
			else merged[name] = changes[name];
		}
		if (merged.pmin !== undefined && merged.pmax !== undefined && merged.pmax > 0 && merged.pmax < merged.pmin) return false;
		if (merged.lt !== undefined && merged.gt !== undefined && merged.lt >= merged.gt) return false;
		if (Object.keys(merged).length) this.#attributes[key] = merged;
		else delete this.#attributes[key];
		if (Object.keys(this.#attributes).length > maxAttributePaths) return false;
		this.#save();
		for (const observation of this.#list)
			if (overlaps(observation.path, path)) this.#armMaxPeriod(observation);
		return true;
	}

	/** The attributes in force at `path`: each from the most specific path that sets it, periods from Object 1 last. */
	attributesAt(path: readonly number[]): Attributes {
		const result: Attributes = {};
		for (let length = path.length; length >= 1; length--) {
			const set = this.#attributes[formatPath(path.slice(0, length))];
			if (!set) continue;
			for (const name of ["pmin", "pmax", "gt", "lt", "st"] as const)
				if (result[name] === undefined && set[name] !== undefined) result[name] = set[name];
		}
		const defaults = this.#host.defaults();
		if (result.pmin === undefined) result.pmin = defaults.pmin;
		if (result.pmax === undefined) result.pmax = defaults.pmax;
		return result;
	}

	/** Attributes set exactly at `path` (for Discover). */
	attributesOn(path: readonly number[]): Attributes | undefined {
		return this.#attributes[formatPath(path)];
	}

	close(): void {
		for (const observation of this.#list) this.#ports.clock.clearTimeout(observation.timer);
	}

	#consider(observation: Observation, always: boolean): void {
		if (observation.sending) {
			observation.pending = true;
			return;
		}
		const snapshot = this.#host.snapshot(observation.path, observation.format);
		const attributes = this.attributesAt(observation.path);
		if (!always && !this.#worthNotifying(observation, snapshot, attributes)) return;
		if (!this.#host.connected()) {
			observation.pending = true;
			observation.due ||= always;
			return this.#host.wake();
		}
		const { clock } = this.#ports;
		const wait = (attributes.pmin ?? 0) * 1000 - (clock.ticks() - observation.sentAt);
		if (!always && wait > 0) {
			observation.pending = true;
			clock.clearTimeout(observation.timer);
			observation.timer = clock.setTimeout(() => this.#consider(observation, true), wait);
			return;
		}
		this.#send(observation, snapshot);
	}

	#worthNotifying(observation: Observation, snapshot: Snapshot, attributes: Attributes): boolean {
		const value = snapshot.number, last = observation.lastNumber;
		if (value !== undefined && last !== undefined && (attributes.gt !== undefined || attributes.lt !== undefined || attributes.st !== undefined)) {
			if (attributes.gt !== undefined && (last > attributes.gt) !== (value > attributes.gt)) return true;
			if (attributes.lt !== undefined && (last < attributes.lt) !== (value < attributes.lt)) return true;
			return attributes.st !== undefined && Math.abs(value - last) >= attributes.st;
		}
		return !observation.lastPayload || !sameBytes(observation.lastPayload, snapshot.payload);
	}

	#send(observation: Observation, snapshot: Snapshot): void {
		observation.sequence = (observation.sequence + 1) & 0xffffff;
		observation.sending = true;
		observation.pending = false;
		observation.due = false;
		observation.sentAt = this.#ports.clock.ticks();
		observation.lastPayload = snapshot.payload.slice();
		observation.lastNumber = snapshot.number;
		this.#armMaxPeriod(observation);
		this.#host.notify(observation, snapshot, (ok) => {
			observation.sending = false;
			if (this.#list.indexOf(observation) < 0) return;
			if (!ok) {
				this.#ports.log(`observation of ${formatPath(observation.path)} dropped: the server did not take its notification`);
				this.#remove(observation);
				return this.#save();
			}
			if (observation.pending) this.#consider(observation, false);
		});
	}

	/** pmax: a notification at the latest pmax seconds after the last one. */
	#armMaxPeriod(observation: Observation): void {
		const { clock } = this.#ports;
		clock.clearTimeout(observation.timer);
		observation.timer = undefined;
		const pmax = this.attributesAt(observation.path).pmax ?? 0;
		if (pmax > 0) observation.timer = clock.setTimeout(() => this.#consider(observation, true), pmax * 1000);
	}

	#remove(observation: Observation): void {
		this.#ports.clock.clearTimeout(observation.timer);
		const index = this.#list.indexOf(observation);
		if (index >= 0) this.#list.splice(index, 1);
	}

	#save(): void {
		const data = this.#session.data;
		data.observations = this.#list.map((o) => ({
			a: o.peer.address, p: o.peer.port, t: hexEncode(o.token, 0, o.token.length), path: formatPath(o.path), f: o.format, s: o.sequence,
		}));
		data.attributes = this.#attributes as SessionData["attributes"];
		this.#session.save();
	}
}

function samePeer(a: Peer, b: Peer): boolean {
	return a.address === b.address && a.port === b.port;
}

/** Whether one path lies at or below the other. */
function overlaps(a: readonly number[], b: readonly number[]): boolean {
	const length = Math.min(a.length, b.length);
	for (let i = 0; i < length; i++)
		if (a[i] !== b[i]) return false;
	return true;
}

function restored(item: SavedObservation, now: number): Observation | undefined {
	if (!item || typeof item !== "object") return undefined;
	const { a, p, t, path, f, s } = item;
	if (typeof a !== "string" || typeof p !== "number" || typeof t !== "string" || typeof path !== "string" || typeof f !== "number" || typeof s !== "number") return undefined;
	if (!/^\/\d{1,5}(\/\d{1,5}){0,3}$/.test(path) || !/^([0-9a-f]{2}){0,8}$/.test(t) || !(p > 0 && p < 65536)) return undefined;
	const token = new Uint8Array(t.length / 2);
	hexDecode(t, token, 0);
	return {
		peer: { address: a, port: p }, token, path: path.slice(1).split("/").map(Number), format: f, sequence: (s + sequenceJump) & 0xffffff,
		sentAt: now, lastPayload: undefined, lastNumber: undefined, timer: undefined, sending: false, pending: true, due: false,
	};
}

function checkedAttributes(value: unknown): Attributes | undefined {
	if (!value || typeof value !== "object") return undefined;
	const result: Attributes = {};
	for (const name of ["pmin", "pmax", "gt", "lt", "st"] as const) {
		const v = (value as { [name: string]: unknown })[name];
		if (v === undefined) continue;
		if (typeof v !== "number" || !Number.isFinite(v)) return undefined;
		result[name] = v;
	}
	return result;
}
