/*
	A small MQTT 3.1.1 client over node:net and mqtt-packet, for the host side: the AWS IoT emulator attached
	to an external broker, and the command line talking to a running emulator. QoS 0 publishes; subscriptions
	wait for their SUBACK; a dropped connection is re-established (and re-subscribed) until close().
*/

import * as net from "node:net";
import { generate, parser, type Packet } from "mqtt-packet";

export type MqttAddress = { host: string; port: number };

export function parseMqttUrl(url: string): MqttAddress {
	const match = /^mqtt:\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(url);
	if (!match) throw new Error(`not an mqtt:// url: ${url}`);
	return { host: match[1].replace(/^\[|\]$/g, ""), port: match[2] ? Number(match[2]) : 1883 };
}

export interface MqttLinkOptions {
	url: string;
	clientId: string;
	/** Wait between reconnection attempts; default 200 ms. */
	reconnectMs?: number;
	/** Seconds; default 60. The link pings on its own. */
	keepalive?: number;
	/** Deadline for the first connection; default 5 s. */
	connectTimeoutMs?: number;
}

export class MqttLink {
	onMessage: (topic: string, payload: Buffer) => void = () => {};
	readonly #options: MqttLinkOptions;
	readonly #address: MqttAddress;
	#socket: net.Socket | undefined;
	#connected = false;
	#closing = false;
	#filters: string[] = [];
	#packetId = 0;
	/** SUBACK waiters by packet id: true when acknowledged, false when the connection was lost first. */
	#acks = new Map<number, (acknowledged: boolean) => void>();
	#waiters: (() => void)[] = [];
	#ping: NodeJS.Timeout | undefined;

	private constructor(options: MqttLinkOptions) {
		this.#options = options;
		this.#address = parseMqttUrl(options.url);
	}

	static async connect(options: MqttLinkOptions): Promise<MqttLink> {
		const link = new MqttLink(options);
		link.#open();
		const deadline = options.connectTimeoutMs ?? 5000;
		let timer: NodeJS.Timeout | undefined;
		try {
			await Promise.race([
				link.#whenConnected(),
				new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`no connection to ${options.url}`)), deadline); }),
			]);
		}
		catch (error) {
			await link.close();
			throw error;
		}
		finally {
			clearTimeout(timer);
		}
		return link;
	}

	get connected(): boolean {
		return this.#connected;
	}

	/** Subscribes (QoS 0) and waits for the SUBACK; the filters are renewed after every reconnection. */
	async subscribe(filters: string[]): Promise<void> {
		this.#filters.push(...filters.filter((filter) => !this.#filters.includes(filter)));
		for (;;) {
			await this.#whenConnected();
			if (this.#closing) throw new Error("mqtt link closed");
			if (await this.#sendSubscribe(filters)) return;
		}
	}

	/** QoS 0: resolves once the bytes are handed to the socket; dropped when the connection is down. */
	publish(topic: string, payload: Buffer | Uint8Array | string): Promise<void> {
		const socket = this.#socket;
		if (!this.#connected || !socket) return Promise.resolve();
		const bytes = generate({ cmd: "publish", topic, payload: typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload), qos: 0, retain: false, dup: false });
		return new Promise((done) => socket.write(bytes, () => done()));
	}

	async close(): Promise<void> {
		this.#closing = true;
		clearInterval(this.#ping);
		for (const waiter of this.#waiters.splice(0)) waiter();
		for (const settle of this.#acks.values()) settle(false);
		this.#acks.clear();
		const socket = this.#socket;
		this.#socket = undefined;
		this.#connected = false;
		if (!socket || socket.destroyed) return;
		await new Promise<void>((done) => {
			socket.once("close", () => done());
			if (socket.writable && !socket.connecting) socket.end(generate({ cmd: "disconnect" }));
			else socket.destroy();
			setTimeout(() => socket.destroy(), 1000).unref();
		});
	}

	#open(): void {
		if (this.#closing) return;
		const socket = net.connect(this.#address);
		const packets = parser({ protocolVersion: 4 });
		this.#socket = socket;
		socket.on("connect", () => {
			socket.write(generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId: this.#options.clientId, keepalive: this.#options.keepalive ?? 60 }));
		});
		socket.on("data", (data) => packets.parse(data));
		socket.on("error", () => socket.destroy());
		socket.on("close", () => this.#lost(socket));
		packets.on("packet", (packet) => this.#packet(packet));
		packets.on("error", () => socket.destroy());
	}

	#packet(packet: Packet): void {
		if (packet.cmd === "connack") {
			if (packet.returnCode) return void this.#socket?.destroy();
			this.#connected = true;
			this.#startPing();
			if (this.#filters.length) void this.#sendSubscribe(this.#filters);
			for (const waiter of this.#waiters.splice(0)) waiter();
		}
		else if (packet.cmd === "publish") {
			const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
			this.onMessage(packet.topic, payload);
		}
		else if (packet.cmd === "suback" && packet.messageId !== undefined) {
			this.#acks.get(packet.messageId)?.(true);
			this.#acks.delete(packet.messageId);
		}
	}

	#lost(socket: net.Socket): void {
		if (socket !== this.#socket) return;
		this.#connected = false;
		clearInterval(this.#ping);
		for (const settle of this.#acks.values()) settle(false);
		this.#acks.clear();
		if (this.#closing) return;
		setTimeout(() => this.#open(), this.#options.reconnectMs ?? 200).unref();
	}

	#sendSubscribe(filters: string[]): Promise<boolean> {
		const messageId = this.#packetId = (this.#packetId % 0xffff) + 1;
		const acknowledged = new Promise<boolean>((done) => this.#acks.set(messageId, done));
		this.#socket?.write(generate({ cmd: "subscribe", messageId, subscriptions: filters.map((topic) => ({ topic, qos: 0 as const })) }));
		return acknowledged;
	}

	#whenConnected(): Promise<void> {
		if (this.#connected || this.#closing) return Promise.resolve();
		return new Promise((done) => this.#waiters.push(done));
	}

	#startPing(): void {
		clearInterval(this.#ping);
		const seconds = this.#options.keepalive ?? 60;
		if (!seconds) return;
		this.#ping = setInterval(() => this.#socket?.write(generate({ cmd: "pingreq" })), seconds * 500);
		this.#ping.unref();
	}
}
