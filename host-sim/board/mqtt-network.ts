/*
	The board's MQTT connections, behaving like Moddable's mqtt Client on a real network stack:
	connect → CONNECT (MQTT 3.1.1, clean session, keepalive from `timeout`) → CONNACK 0 → "ready";
	PUBLISH in → "message" (topic, payload bytes); a refused CONNACK, a drop, a broken packet or a read
	time-out → "closed" (once). QoS 0 as Moddable does it: subscriptions ask for QoS 0, acknowledgements are
	ignored, incoming QoS 1 gets no PUBACK. The device's own close() sends DISCONNECT and reports nothing.
	Events are queued for the board's run loop.

	A secure connection (mqtts) speaks TLS (tls.ts) with the device's client certificate and sends CONNECT
	once the handshake is done; a failed handshake closes it with its reason.

	Keepalive runs on real time, not the virtual clock: the broker counts real seconds, and while a connection
	is open the run loop only lets virtual time pass at real speed (see waitFor).

	Settling (an AWS IoT emulator in this process as the peer, aws-iot.ts): instead of guessing from real time,
	the connection asks the emulator whether anything is still on its way. After the device's last publish or
	subscription it publishes a flush request on the host's behalf; the emulator answers it through the same
	ordered outbox as every reply, so once the answer is in, every reply to what the device sent is in too. The
	run loop then lets no real time count on the virtual clock: the board is idle, or its next timer is due.
*/

import * as net from "node:net";
import * as tls from "node:tls";
import { generate, parser, type Packet } from "mqtt-packet";
import { connectOptions, tlsFailure, type SecureSpec } from "./tls";
import { threadId } from "node:worker_threads";
import { EventQueue, type QueuedEvent } from "./event-queue";
import { NetworkSignal } from "./signal";

export interface MqttEvent {
	id: number;
	message: "ready" | "message" | "closed";
	topic?: string;
	reason?: string;
}

export interface MqttSpec {
	host: string;
	port: number;
	clientId: string;
	user?: string;
	password?: string;
	/** Seconds; 0 turns keepalive off. */
	keepalive: number;
	secure: SecureSpec | undefined;
}

/**
	Real milliseconds an open connection keeps the run loop waiting after its last traffic when the device has
	no timer armed: long enough for a local broker to answer a request the device sent without a time-out.
*/
export const defaultQuietMs = 250;
const receiveWindow = 65536;
const waitSliceMs = 1000;

/** The emulator's flush round trip (see Settling): request and answer topics, the payload a sequence number. */
export const flushTopics = {
	request: (clientId: string) => `xs-ota/emulator/flush/${clientId}`,
	requestFilter: "xs-ota/emulator/flush/+",
	answer: (clientId: string) => `xs-ota/emulator/flushed/${clientId}`,
};
/** A flush answer not in after this long (real ms) is asked for again. */
const flushRetryMs = 1000;
/**
	Flush requests are numbered across the process, and carry the thread's id: an answer meant for an earlier
	connection of the same client (on this thread or another) is not ours.
*/
let flushRequests = 0;

class Connection {
	readonly socket: net.Socket;
	state: "connecting" | "ready" | "done" = "connecting";
	lastTraffic = Date.now();
	#parser = parser({ protocolVersion: 4 });
	#lastRead = Date.now();
	#lastWrite = Date.now();
	#packetId = 0;
	#keepalive: NodeJS.Timeout | undefined;
	readonly #clientId: string;
	readonly #flushAnswerTopic: string;
	/** Settling: the flush answers' subscription (its packet id until acknowledged, then "ready"). */
	#flushSubscription: number | "ready" | undefined;
	#flushAsked = "";
	#flushAnswered = "";
	#flushAskedAt = 0;
	/** The device sent something since the last flush request. */
	#flushNeeded = true;

	constructor(readonly id: number, readonly network: MqttNetwork, spec: MqttSpec, secure: tls.ConnectionOptions | undefined) {
		this.#clientId = spec.clientId;
		this.#flushAnswerTopic = flushTopics.answer(spec.clientId);
		const host = spec.host === "localhost" ? "127.0.0.1" : spec.host;
		// No Nagle: a request held back for the broker's delayed ACK would cost 40 real ms, which the clock counts.
		this.socket = secure ? tls.connect({ ...secure, host }) : net.connect({ host, port: spec.port });
		this.socket.setNoDelay(true);
		let connected = false;
		this.socket.on(secure ? "secureConnect" : "connect", () => {
			connected = true;
			this.write({
				cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId: spec.clientId,
				keepalive: spec.keepalive, username: spec.user, password: spec.password === undefined ? undefined : Buffer.from(spec.password),
			});
			if (spec.keepalive > 0) this.#startKeepalive(spec.keepalive * 1000);
		});
		this.socket.on("data", (data) => this.receive(data));
		this.socket.on("error", (error: NodeJS.ErrnoException) => {
			const reason = secure && !connected ? tlsFailure(error, { mutual: true, sent: secure.cert !== undefined }) : undefined;
			this.fail(reason ?? `socket error ${error.code ?? error.message}`);
		});
		this.socket.on("close", () => this.fail("connection closed by peer"));
		this.#parser.on("packet", (packet) => this.packet(packet));
		this.#parser.on("error", (error) => this.fail(`bad packet: ${error.message}`));
	}

	receive(data: Buffer): void {
		this.network.bytesReceived += data.length;
		this.#lastRead = this.lastTraffic = Date.now();
		this.#parser.parse(data);
		// Back-pressure, like a TCP receive window: the host holds little more than the device has taken.
		if (this.network.backedUp) this.socket.pause();
	}

	packet(packet: Packet): void {
		if (this.state === "done") return;
		if (this.state === "connecting") {
			if (packet.cmd !== "connack") return this.fail(`received ${packet.cmd} when expecting connack`);
			if (packet.returnCode) return this.fail(`server rejected mqtt request with code ${packet.returnCode}`);
			this.state = "ready";
			if (this.network.settles) {
				this.#flushSubscription = this.#nextPacketId();
				this.write({ cmd: "subscribe", messageId: this.#flushSubscription, subscriptions: [{ topic: this.#flushAnswerTopic, qos: 0 }] });
			}
			return this.network.queue({ id: this.id, message: "ready" });
		}
		if (packet.cmd === "suback" && packet.messageId === this.#flushSubscription) {
			this.#flushSubscription = "ready";
			return this.network.signal.notify();
		}
		if (packet.cmd === "publish" && packet.topic === this.#flushAnswerTopic) {
			if (packet.payload.toString() === this.#flushAsked) this.#flushAnswered = this.#flushAsked;
			return this.network.signal.notify();
		}
		if (packet.cmd === "publish") {
			const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
			this.network.queue({ id: this.id, message: "message", topic: packet.topic }, new Uint8Array(payload));
		}
		// pingresp, suback, unsuback, puback…: nothing to do, as in Moddable.
	}

	/**
		Settling: whether every reply to what the device sent has arrived. Asks the emulator (a flush request)
		when the device sent something since the last one, or when an answer is overdue.
	*/
	settled(): boolean {
		if (this.state !== "ready" || this.#flushSubscription !== "ready") return false;
		if (!this.#flushNeeded && this.#flushAnswered === this.#flushAsked) return true;
		if (this.#flushNeeded || Date.now() - this.#flushAskedAt >= flushRetryMs) {
			this.#flushNeeded = false;
			this.#flushAskedAt = Date.now();
			this.write({ cmd: "publish", topic: flushTopics.request(this.#clientId), payload: Buffer.from(this.#flushAsked = `${threadId}.${++flushRequests}`), qos: 0, retain: false, dup: false });
		}
		return false;
	}

	publish(topic: string, payload: Uint8Array, qos: number, retain: boolean): void {
		this.#flushNeeded = true;
		const quality = (qos & 3) as 0 | 1 | 2;
		this.write({ cmd: "publish", topic, payload: Buffer.from(payload), qos: quality, retain, dup: false, messageId: quality ? this.#nextPacketId() : undefined });
	}

	subscribe(topic: string): void {
		this.#flushNeeded = true;
		this.write({ cmd: "subscribe", messageId: this.#nextPacketId(), subscriptions: [{ topic, qos: 0 }] });
	}

	unsubscribe(topic: string): void {
		this.#flushNeeded = true;
		this.write({ cmd: "unsubscribe", messageId: this.#nextPacketId(), unsubscriptions: [topic] });
	}

	write(packet: Packet): void {
		this.#lastWrite = this.lastTraffic = Date.now();
		this.socket.write(generate(packet));
	}

	/** The far side ended it: one "closed" event, then nothing more from this connection. */
	fail(reason: string): void {
		if (this.state === "done") return;
		this.#end();
		this.socket.destroy();
		this.network.queue({ id: this.id, message: "closed", reason });
	}

	/** The device's close(): DISCONNECT, no event. */
	close(): void {
		if (this.state === "done") return;
		const wasConnected = this.state === "ready" || !this.socket.connecting;
		this.#end();
		if (wasConnected && this.socket.writable) this.socket.end(generate({ cmd: "disconnect" }));
		else this.socket.destroy();
	}

	/** Power off: the socket just vanishes. */
	drop(): void {
		this.#end();
		this.socket.destroy();
	}

	#end(): void {
		this.state = "done";
		clearInterval(this.#keepalive);
		this.network.forget(this.id);
	}

	#nextPacketId(): number {
		this.#packetId = (this.#packetId % 0xffff) + 1;
		return this.#packetId;
	}

	// Moddable's rule: ping within three quarters of the interval, give up after 1.5 intervals of silence.
	#startKeepalive(intervalMs: number): void {
		this.#keepalive = setInterval(() => {
			const now = Date.now();
			if (now - this.#lastRead >= intervalMs * 1.5) return this.fail("read time out");
			if (now - this.#lastWrite >= intervalMs * 0.75 - 500) this.write({ cmd: "pingreq" });
		}, Math.max(250, intervalMs / 4));
		this.#keepalive.unref();
	}
}

const streamData = /^\$aws\/things\/[^/]+\/streams\/[^/]+\/data\//;

export class MqttNetwork {
	/** Bytes received from sockets, MQTT framing included. */
	bytesReceived = 0;
	/** Message payload bytes delivered to the device. */
	payloadBytes = 0;
	/** Stream data messages (one block each) delivered to the device. */
	blocksDelivered = 0;
	quietMs: number;
	/** The broker's emulator answers flush requests: connections settle (see Settling) instead of waiting quietMs. */
	readonly settles: boolean;
	readonly signal: NetworkSignal;
	#connections = new Map<number, Connection>();
	#queue: EventQueue<MqttEvent>;

	constructor(signal = new NetworkSignal(), quietMs = defaultQuietMs, settles = false) {
		this.#queue = new EventQueue<MqttEvent>(signal, receiveWindow, () => {
			for (const connection of this.#connections.values()) connection.socket.resume();
		});
		this.signal = signal;
		this.quietMs = quietMs;
		this.settles = settles;
	}

	open(id: number, spec: MqttSpec): void {
		const secure = spec.secure ? connectOptions(spec.secure, spec.host, spec.port) : undefined;
		// Refused before any byte is sent (no trust anchor, unusable credentials): closed, as an event.
		if (typeof secure === "string") return this.queue({ id, message: "closed", reason: secure });
		this.#connections.set(id, new Connection(id, this, spec, secure));
	}

	publish(id: number, topic: string, payload: Uint8Array, qos = 0, retain = false): void {
		this.#ready(id).publish(topic, payload, qos, retain);
	}

	subscribe(id: number, topic: string): void {
		this.#ready(id).subscribe(topic);
	}

	unsubscribe(id: number, topic: string): void {
		this.#ready(id).unsubscribe(topic);
	}

	close(id: number): void {
		this.#connections.get(id)?.close();
		this.#queue.drop(id);
	}

	forget(id: number): void {
		this.#connections.delete(id);
	}

	queue(event: MqttEvent, data?: Uint8Array): void {
		this.#queue.push(event, data);
	}

	/** Whether a socket that just received data should pause (the device is behind). */
	get backedUp(): boolean {
		return this.#queue.full;
	}

	/** The events waiting for the device, next first. */
	get queued(): readonly QueuedEvent<MqttEvent>[] {
		return this.#queue.entries;
	}

	take(): { event: MqttEvent; data: Uint8Array | undefined } | undefined {
		const entry = this.#queue.take();
		if (entry?.data) this.payloadBytes += entry.data.length;
		if (entry?.event.topic && streamData.test(entry.event.topic)) this.blocksDelivered++;
		return entry;
	}

	get hasEvents(): boolean {
		return this.#queue.length > 0;
	}

	/** Connections not yet closed, whatever their state. */
	get openCount(): number {
		return this.#connections.size;
	}

	/**
		How long the run loop should wait for this network, in real ms, or undefined when it need not.
		A connection still connecting always counts. One that is up counts while the device has a timer armed
		(`untilTimer`): the device is then waiting for answers it will re-request or give up on. Without a timer,
		it counts only for quietMs after its last traffic, so that an answer already on its way still arrives;
		after that the board is idle, since nothing the device does could ever end the wait.
		A network that settles waits until every connection has settled, whatever the timers.
	*/
	waitFor(untilTimer: number | undefined): number | undefined {
		if (this.#queue.length) return 0;
		if (this.settles) {
			let settled = true;
			for (const connection of this.#connections.values()) settled = connection.settled() && settled;
			return settled ? undefined : waitSliceMs;
		}
		let connecting = false, lastTraffic = -Infinity;
		for (const connection of this.#connections.values()) {
			if (connection.state === "connecting") connecting = true;
			lastTraffic = Math.max(lastTraffic, connection.lastTraffic);
		}
		if (connecting) return untilTimer ?? waitSliceMs;
		if (!this.#connections.size) return undefined;
		if (untilTimer !== undefined) return untilTimer;
		const quiet = this.quietMs - (Date.now() - lastTraffic);
		return quiet > 0 ? quiet : undefined;
	}

	/**
		Settling, as the board goes down (a reboot, a cut, the end of a run): whether every reply to what the
		device sent on a connection that is up has come in, asking when needed. What came is dropped: it reached
		a board that was going down (a real reboot outlasts a local broker's latency), and none of it is left to
		reach the next power-on's connection by chance.
	*/
	drained(): boolean {
		this.#queue.clear();
		let drained = true;
		for (const connection of this.#connections.values()) {
			connection.socket.resume();
			if (connection.state === "ready") drained = connection.settled() && drained;
		}
		return drained;
	}

	/** Power off: every connection vanishes without a word, queued events are lost. */
	closeAll(): void {
		for (const connection of [...this.#connections.values()]) connection.drop();
		this.#queue.clear();
	}

	#ready(id: number): Connection {
		const connection = this.#connections.get(id);
		// Gone already, though the device may not have taken the "closed" event yet: a dead socket refuses writes.
		if (!connection || connection.state !== "ready") throw new Error("connection closed");
		return connection;
	}
}
