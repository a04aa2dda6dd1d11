/*
	Where the AWS IoT emulator meets MQTT: an in-process aedes broker it drives directly, or any external
	broker (mosquitto) it joins as an ordinary client. Both are a BrokerLink to the emulator.
*/

import { Aedes, type AedesPublishPacket } from "aedes";
import * as net from "node:net";
import * as tls from "node:tls";
import { serverTlsOptions, type ServerTls } from "./server-tls";
import { MqttLink } from "./mqtt-link";

export interface BrokerLink {
	/** Every message on the filters given to subscribe. */
	onMessage: (topic: string, payload: Buffer) => void;
	subscribe(filters: string[]): Promise<void>;
	/** QoS 0, not retained; resolves when the broker has taken it. */
	publish(topic: string, payload: Buffer): Promise<void>;
	close(): Promise<void>;
}

export interface AedesBroker {
	url: string;
	port: number;
	/** The emulator's own door into the broker: no socket, so it survives restart(). */
	link: BrokerLink;
	/** ALPN protocols TLS clients were accepted with (a listener that requires ALPN only). */
	alpnSeen(): string[];
	/** Closes the listener and drops every client, then listens again on the same port. */
	restart(): Promise<void>;
	close(): Promise<void>;
}

/** With `tls`, MQTT over TLS (mqtts://) only, client certificates required when it names their CA. */
export async function startAedes(options: { port?: number; host?: string; tls?: ServerTls } = {}): Promise<AedesBroker> {
	const host = options.host ?? "127.0.0.1";
	const aedes = await Aedes.createBroker({ heartbeatInterval: 3_600_000 });
	const sockets = new Set<net.Socket>();
	const alpn = options.tls?.alpn, alpnSeen = new Set<string>();
	const accept = (socket: net.Socket) => {
		// Like AWS IoT Core on 443: MQTT only for a client that asked for it by ALPN.
		if (alpn) {
			const protocol = (socket as tls.TLSSocket).alpnProtocol;
			if (typeof protocol !== "string" || !alpn.includes(protocol)) return socket.destroy();
			alpnSeen.add(protocol);
		}
		socket.setNoDelay(true);
		sockets.add(socket);
		socket.once("close", () => sockets.delete(socket));
		aedes.handle(socket);
	};
	const server = options.tls ? tls.createServer(serverTlsOptions(options.tls), accept) : net.createServer(accept);
	// A refused handshake is the client's problem, not the broker's.
	server.on("tlsClientError", () => {});
	const listen = (port: number) => new Promise<void>((done, fail) => {
		server.once("error", fail);
		server.listen(port, host, () => { server.off("error", fail); done(); });
	});
	await listen(options.port ?? 0);
	const port = (server.address() as net.AddressInfo).port;

	const stopListening = async () => {
		const closed = new Promise<void>((done) => server.close(() => done()));
		for (const socket of sockets) socket.destroy();
		await closed;
	};
	let closing: Promise<void> | undefined;
	return {
		url: `${options.tls ? "mqtts" : "mqtt"}://${host}:${port}`,
		port,
		link: aedesLink(aedes),
		alpnSeen: () => [...alpnSeen],
		async restart() {
			await stopListening();
			await listen(port);
		},
		close: () => (closing ??= (async () => {
			await stopListening();
			await new Promise<void>((done) => aedes.close(() => done()));
		})()),
	};
}

function aedesLink(aedes: Aedes): BrokerLink {
	const deliver = (packet: AedesPublishPacket, done: () => void) => {
		link.onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
		done();
	};
	const filters: string[] = [];
	const link: BrokerLink = {
		onMessage: () => {},
		async subscribe(wanted) {
			for (const filter of wanted) {
				filters.push(filter);
				await new Promise<void>((done) => aedes.subscribe(filter, deliver, done));
			}
		},
		publish(topic, payload) {
			return new Promise((done) => aedes.publish({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false }, () => done()));
		},
		async close() {
			for (const filter of filters.splice(0))
				await new Promise<void>((done) => aedes.unsubscribe(filter, deliver, done));
		},
	};
	return link;
}

/** The emulator as a client of an external broker. */
export async function externalLink(url: string, clientId: string): Promise<BrokerLink> {
	const client = await MqttLink.connect({ url, clientId });
	const link: BrokerLink = {
		onMessage: () => {},
		subscribe: (filters) => client.subscribe(filters),
		publish: (topic, payload) => client.publish(topic, payload),
		close: () => client.close(),
	};
	client.onMessage = (topic, payload) => link.onMessage(topic, payload);
	return link;
}
